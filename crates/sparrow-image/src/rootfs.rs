//! A file tree as data, written as a reproducible tar: entries sorted by path (so parents come
//! first), one fixed mtime, uid/gid 0, fixed modes, no user or group names, as ko's
//! `tarBinary` writes its layers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// Mode of directories and of files meant to be executed.
pub const MODE_EXEC: u32 = 0o755;
/// Mode of every other file.
pub const MODE_FILE: u32 = 0o644;
/// Mode of a world-writable directory with the sticky bit, as `/tmp`.
pub const MODE_STICKY: u32 = 0o1777;

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory with its mode.
    Dir {
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Its content.
        data: Vec<u8>,
        /// Permission bits.
        mode: u32,
    },
    /// A symbolic link.
    Symlink {
        /// Where it points, as written.
        target: String,
    },
}

/// A file tree keyed by relative path (`etc/passwd`, no leading slash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RootFs {
    entries: BTreeMap<String, Entry>,
}

impl RootFs {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory (and its parents, mode 0755).
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let path = normalize(path);
        self.parents(&path);
        self.entries.insert(path, Entry::Dir { mode });
        self
    }

    /// Adds a regular file (and its parent directories).
    pub fn file(&mut self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> &mut Self {
        let path = normalize(path);
        self.parents(&path);
        let data = data.into();
        self.entries.insert(path, Entry::File { data, mode });
        self
    }

    /// Adds a symbolic link (and its parent directories).
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let path = normalize(path);
        self.parents(&path);
        let target = target.to_owned();
        self.entries.insert(path, Entry::Symlink { target });
        self
    }

    /// Copies the directory `source` into the tree: files keep only whether they are
    /// executable (0755 or 0644), symbolic links are kept as links, directories get 0755.
    pub fn add_tree(&mut self, source: &Path) -> io::Result<&mut Self> {
        self.add_tree_under(source, "")?;
        Ok(self)
    }

    fn add_tree_under(&mut self, dir: &Path, prefix: &str) -> io::Result<()> {
        let mut children: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        children.sort_by_key(|child| child.file_name());
        for child in children {
            let name = child.file_name();
            let name = name.to_str().ok_or_else(|| {
                io::Error::other(format!("{}: not a UTF-8 name", child.path().display()))
            })?;
            let path = format!("{prefix}{name}");
            let kind = child.file_type()?;
            if kind.is_symlink() {
                let target = std::fs::read_link(child.path())?;
                let target = target.to_str().ok_or_else(|| {
                    io::Error::other(format!("{}: not a UTF-8 target", child.path().display()))
                })?;
                self.symlink(&path, target);
            } else if kind.is_dir() {
                self.dir(&path, MODE_EXEC);
                self.add_tree_under(&child.path(), &format!("{path}/"))?;
            } else {
                use std::os::unix::fs::PermissionsExt as _;
                let executable = child.metadata()?.permissions().mode() & 0o111 != 0;
                let mode = if executable { MODE_EXEC } else { MODE_FILE };
                self.file(&path, std::fs::read(child.path())?, mode);
            }
        }
        Ok(())
    }

    fn parents(&mut self, path: &str) {
        let mut end = 0;
        while let Some(slash) = path[end..].find('/') {
            end += slash;
            self.entries
                .entry(path[..end].to_owned())
                .or_insert(Entry::Dir { mode: MODE_EXEC });
            end += 1;
        }
    }

    /// The entry at `path`, if any.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&normalize(path))
    }

    /// One line per entry, in tar order: `drwxr-xr-x etc/`, `-rw-r--r-- etc/passwd`,
    /// `lrwxrwxrwx usr/sbin/iptables -> xtables-nft-multi` (what the golden files hold; sizes
    /// are left out so a rebuilt binary does not change the listing).
    pub fn listing(&self) -> String {
        let mut out = String::new();
        for (path, entry) in &self.entries {
            let _ = match entry {
                Entry::Dir { mode } => writeln!(out, "d{} {path}/", permissions(*mode)),
                Entry::File { mode, .. } => writeln!(out, "-{} {path}", permissions(*mode)),
                Entry::Symlink { target } => writeln!(out, "lrwxrwxrwx {path} -> {target}"),
            };
        }
        out
    }

    /// The tree as an uncompressed tar, every entry stamped with `mtime` (seconds since the
    /// epoch) and owned by 0:0.
    pub fn to_tar(&self, mtime: u64) -> io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(mtime);
            match entry {
                Entry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), io::empty())?;
                }
                Entry::File { data, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, data.as_slice())?;
                }
                Entry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)?;
                }
            }
        }
        builder.into_inner()
    }
}

fn normalize(path: &str) -> String {
    path.trim_matches('/').to_owned()
}

fn permissions(mode: u32) -> String {
    let mut text = String::with_capacity(9);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        let execute = bits & 1 != 0;
        // The sticky bit shows in the others' execute position, as ls prints it.
        text.push(match (shift == 0 && mode & 0o1000 != 0, execute) {
            (true, true) => 't',
            (true, false) => 'T',
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RootFs {
        let mut root = RootFs::new();
        root.file("/usr/local/bin/app", b"#!binary".to_vec(), MODE_EXEC)
            .file("etc/passwd", "root:x:0:0::/:/sbin/nologin\n", MODE_FILE)
            .dir("tmp", MODE_STICKY)
            .symlink("usr/sbin/tool", "../local/bin/app");
        root
    }

    #[test]
    fn parents_come_first_and_are_created() {
        assert_eq!(
            sample().listing(),
            "drwxr-xr-x etc/\n\
             -rw-r--r-- etc/passwd\n\
             drwxrwxrwt tmp/\n\
             drwxr-xr-x usr/\n\
             drwxr-xr-x usr/local/\n\
             drwxr-xr-x usr/local/bin/\n\
             -rwxr-xr-x usr/local/bin/app\n\
             drwxr-xr-x usr/sbin/\n\
             lrwxrwxrwx usr/sbin/tool -> ../local/bin/app\n"
        );
    }

    #[test]
    fn the_tar_is_reproducible_and_normalized() {
        let first = sample().to_tar(1_700_000_000).expect("tar");
        assert_eq!(first, sample().to_tar(1_700_000_000).expect("tar"));
        assert_ne!(first, sample().to_tar(1_700_000_001).expect("tar"));

        let mut archive = tar::Archive::new(first.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let header = entry.header();
            assert_eq!(header.uid().expect("uid"), 0);
            assert_eq!(header.gid().expect("gid"), 0);
            assert_eq!(header.mtime().expect("mtime"), 1_700_000_000);
            assert_eq!(header.username().expect("utf-8"), Some(""));
            let path = entry.path().expect("path").display().to_string();
            let mode = header.mode().expect("mode");
            seen.push(format!("{path} {mode:o}"));
        }
        assert_eq!(seen[0], "etc/ 755");
        assert!(seen.contains(&"tmp/ 1777".to_owned()), "{seen:?}");
        assert!(
            seen.contains(&"usr/local/bin/app 755".to_owned()),
            "{seen:?}"
        );
    }

    #[test]
    fn a_directory_tree_keeps_links_and_the_executable_bit() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let lib = dir.path().join("usr/lib");
        std::fs::create_dir_all(&lib).expect("mkdir");
        std::fs::write(lib.join("libx.so.1.2"), b"elf").expect("write");
        std::fs::set_permissions(
            lib.join("libx.so.1.2"),
            std::fs::Permissions::from_mode(0o700),
        )
        .expect("chmod");
        std::fs::write(lib.join("data"), b"d").expect("write");
        std::fs::set_permissions(lib.join("data"), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        std::os::unix::fs::symlink("libx.so.1.2", lib.join("libx.so.1")).expect("symlink");

        let mut root = RootFs::new();
        root.add_tree(dir.path()).expect("tree");
        assert_eq!(
            root.listing(),
            "drwxr-xr-x usr/\n\
             drwxr-xr-x usr/lib/\n\
             -rw-r--r-- usr/lib/data\n\
             lrwxrwxrwx usr/lib/libx.so.1 -> libx.so.1.2\n\
             -rwxr-xr-x usr/lib/libx.so.1.2\n"
        );
    }

    #[test]
    fn modes_print_as_ls_does() {
        assert_eq!(permissions(0o755), "rwxr-xr-x");
        assert_eq!(permissions(0o644), "rw-r--r--");
        assert_eq!(permissions(0o1777), "rwxrwxrwt");
        assert_eq!(permissions(0o1776), "rwxrwxrwT");
    }
}
