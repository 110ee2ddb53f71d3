//! The driver: runs `iptables-save` and `iptables-restore` of one backend.

use std::io::{ErrorKind, Write as _};
use std::process::{Command, Stdio};

use crate::InitError;
use crate::backend::Backend;

/// One backend's iptables, run as child processes (which inherit the caller's network
/// namespace).
#[derive(Debug, Clone, Copy)]
pub struct Iptables {
    backend: Backend,
}

impl Iptables {
    /// The iptables of `backend`.
    pub fn new(backend: Backend) -> Self {
        Self { backend }
    }

    /// The backend used.
    pub fn backend(self) -> Backend {
        self.backend
    }

    /// `iptables-save -t <table>`.
    pub fn save(self, table: &str) -> Result<String, InitError> {
        self.run("iptables-save", &["-t", table], None)
    }

    /// `iptables-restore --noflush` of `document`: applied as one transaction, the tables
    /// and chains it does not name left as they are.
    pub fn restore_noflush(self, document: &str) -> Result<(), InitError> {
        // --wait: the legacy backend takes a host-wide lock that another pod may hold.
        self.run("iptables-restore", &["--noflush", "--wait"], Some(document))
            .map(drop)
    }

    fn run(
        self,
        applet: &'static str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, InitError> {
        let program = self.backend.program();
        let spawn = |source| InitError::Spawn {
            program,
            applet,
            source,
        };
        let mut child = Command::new(program)
            .arg(applet)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| match source.kind() {
                ErrorKind::NotFound => InitError::MissingBinary { program, source },
                _ => spawn(source),
            })?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).map_err(spawn)?;
        }
        let output = child.wait_with_output().map_err(spawn)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        if stderr.contains("Permission denied") || stderr.contains("you must be root") {
            return Err(InitError::PermissionDenied { program, applet });
        }
        Err(InitError::Failed {
            program,
            applet,
            status: output.status,
            stderr: one_line(&stderr),
        })
    }
}

/// Non-empty lines joined with `; `.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The backend the node uses (see [`Backend::choose`]). A backend whose binary is missing
/// or whose save fails (its kernel module missing, say) counts as holding no hint; a lack
/// of privilege is an error.
pub fn detect_backend() -> Result<Backend, InitError> {
    let mangle = |backend| match Iptables::new(backend).save("mangle") {
        Ok(save) => Ok(Some(save)),
        Err(InitError::Failed { .. } | InitError::MissingBinary { .. }) => Ok(None),
        Err(e) => Err(e),
    };
    let nft = mangle(Backend::Nft)?;
    let legacy = mangle(Backend::Legacy)?;
    Ok(Backend::choose(nft.as_deref(), legacy.as_deref()))
}
