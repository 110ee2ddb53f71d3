//! The kubelet's image-glob match (`URLsMatchStr` in `pkg/credentialprovider`), used for a
//! provider's `matchImages` and for the keys of a plugin's `auth` map.
//!
//! Both sides are read as scheme-less URLs: the host (with an optional port) runs to the first
//! `/`, the path is the rest. A pattern matches a target when the ports are equal (a pattern
//! without a port matches only targets without one), the hosts have the same number of
//! dot-separated labels and each label matches its pattern label as Go's `filepath.Match`
//! does (`*`, `?`, `[a-z]`, `[^a-z]`, `\` escapes; `*` stays within a label, so
//! `*.example.com` matches `a.example.com` but neither `example.com` nor `a.b.example.com`),
//! and the target's path starts with the pattern's path (a string prefix, as the kubelet
//! checks it: `reg.io/team` matches `reg.io/teammates/x` too).

/// True when `target` (an image or a registry) matches `pattern` by the kubelet's rules.
/// A malformed pattern (an unclosed `[`) matches nothing, as in the kubelet.
pub fn urls_match(pattern: &str, target: &str) -> bool {
    let (pattern_host, pattern_path) = split_url(pattern);
    let (target_host, target_path) = split_url(target);
    let (pattern_labels, pattern_port) = split_host_port(pattern_host);
    let (target_labels, target_port) = split_host_port(target_host);
    if pattern_port != target_port || !target_path.starts_with(pattern_path) {
        return false;
    }
    let pattern_labels: Vec<&str> = pattern_labels.split('.').collect();
    let target_labels: Vec<&str> = target_labels.split('.').collect();
    pattern_labels.len() == target_labels.len()
        && pattern_labels
            .iter()
            .zip(&target_labels)
            .all(|(pattern, label)| label_matches(pattern, label))
}

/// Host (with port) and path (with its leading `/`), as Go's `url.Parse("https://" + s)`
/// splits them; a query or fragment is no part of either.
fn split_url(url: &str) -> (&str, &str) {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    // User information (`user@host`) is no part of the host either.
    let (authority, path) = match url.find('/') {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    (host, path)
}

/// The host and the port as Go's `net.SplitHostPort` splits them, the whole host and no port
/// when it cannot (no colon, or colons of an unbracketed IPv6 address).
fn split_host_port(host: &str) -> (&str, &str) {
    if let Some(inside) = host.strip_prefix('[') {
        return match inside.split_once("]:") {
            Some((address, port)) if !port.contains(':') => (address, port),
            _ => (host, ""),
        };
    }
    match host.split_once(':') {
        Some((name, port)) if !port.contains(':') => (name, port),
        _ => (host, ""),
    }
}

/// Go's `filepath.Match` for one label (labels hold no separator).
fn label_matches(pattern: &str, label: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let label: Vec<char> = label.chars().collect();
    glob(&pattern, &label).unwrap_or(false)
}

/// `None` for a malformed pattern.
fn glob(pattern: &[char], text: &[char]) -> Option<bool> {
    let Some((&first, rest)) = pattern.split_first() else {
        return Some(text.is_empty());
    };
    match first {
        '*' => {
            let rest = trim_leading_stars(rest);
            for skip in 0..=text.len() {
                if glob(rest, &text[skip..])? {
                    return Some(true);
                }
            }
            Some(false)
        }
        '?' => match text.split_first() {
            Some((_, text)) => glob(rest, text),
            None => Some(false),
        },
        '[' => {
            let (matched, rest) = class(rest, text.first().copied())?;
            match text.split_first() {
                Some((_, text)) if matched => glob(rest, text),
                _ => Some(false),
            }
        }
        '\\' => {
            let (&literal, rest) = rest.split_first()?;
            match text.split_first() {
                Some((&c, text)) if c == literal => glob(rest, text),
                _ => Some(false),
            }
        }
        literal => match text.split_first() {
            Some((&c, text)) if c == literal => glob(rest, text),
            _ => Some(false),
        },
    }
}

fn trim_leading_stars(mut pattern: &[char]) -> &[char] {
    while let Some(('*', rest)) = pattern.split_first() {
        pattern = rest;
    }
    pattern
}

/// A character class after its `[`: whether `c` is in it, and the pattern after its `]`.
/// `None` when the class is malformed (unclosed, empty, a dangling escape or range).
fn class(pattern: &[char], c: Option<char>) -> Option<(bool, &[char])> {
    let (negated, mut pattern) = match pattern.split_first() {
        Some(('^', rest)) => (true, rest),
        _ => (false, pattern),
    };
    let mut matched = false;
    let mut first = true;
    loop {
        match pattern.split_first() {
            None => return None,
            Some((']', rest)) if !first => {
                return Some((matched != negated && c.is_some(), rest));
            }
            _ => {}
        }
        first = false;
        let (low, rest) = class_char(pattern)?;
        let (high, rest) = match rest.split_first() {
            Some(('-', after)) => class_char(after)?,
            _ => (low, rest),
        };
        if let Some(c) = c
            && low <= c
            && c <= high
        {
            matched = true;
        }
        pattern = rest;
    }
}

fn class_char(pattern: &[char]) -> Option<(char, &[char])> {
    match pattern.split_first()? {
        ('\\', rest) => rest.split_first().map(|(&c, rest)| (c, rest)),
        (']' | '-', _) => None,
        (&c, rest) => Some((c, rest)),
    }
}

#[cfg(test)]
mod tests;
