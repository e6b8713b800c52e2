//! A sandbox's own `/opt`: its processes start in a mount namespace of their own in which a
//! folder (the function's layers, merged) is bound read-only at `/opt`, as Lambda unpacks layers
//! there.
//!
//! As root a mount namespace is enough; otherwise an unprivileged user namespace maps the user
//! to itself and owns the mount namespace. Where neither is allowed (a container without
//! `CAP_SYS_ADMIN` and with user namespaces off, or no `/opt` folder to mount over),
//! [`opt_mount_available`] says so once and callers point the environment at the folder instead.
//!
//! The namespace is entered between `fork` and `exec` of each process, so only raw system calls
//! on data prepared before the fork run there.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// Where Lambda puts layers.
pub const OPT: &str = "/opt";

/// How a process gets its own mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A mount namespace alone (root, with `CAP_SYS_ADMIN`).
    Mount,
    /// A user namespace mapping our user to itself, owning a mount namespace.
    UserAndMount,
}

/// Everything the child needs, prepared before the fork.
struct Plan {
    mode: Mode,
    source: CString,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl Plan {
    fn new(mode: Mode, source: &Path) -> io::Result<Self> {
        let source = CString::new(source.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the /opt path"))?;
        // SAFETY: getuid and getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        Ok(Self {
            mode,
            source,
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        })
    }

    /// Enters the namespaces and binds `source` read-only at `/opt`. Runs in the child between
    /// `fork` and `exec`: system calls only, no allocation.
    fn enter(&self) -> io::Result<()> {
        let flags = match self.mode {
            Mode::Mount => libc::CLONE_NEWNS,
            Mode::UserAndMount => libc::CLONE_NEWUSER | libc::CLONE_NEWNS,
        };
        // SAFETY: plain system calls on NUL-terminated strings that outlive them.
        unsafe {
            check(libc::unshare(flags))?;
            if self.mode == Mode::UserAndMount {
                write_file(c"/proc/self/setgroups", b"deny")?;
                write_file(c"/proc/self/uid_map", &self.uid_map)?;
                write_file(c"/proc/self/gid_map", &self.gid_map)?;
            }
            // Nothing mounted here may reach the host's namespace.
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                self.source.as_ptr(),
                c"/opt".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ))?;
            check(libc::mount(
                std::ptr::null(),
                c"/opt".as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                std::ptr::null(),
            ))?;
        }
        Ok(())
    }
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Writes `bytes` to `path` with open/write/close.
///
/// # Safety
/// Async-signal-safe: callable between `fork` and `exec`.
unsafe fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    // SAFETY: the caller's; the pointers are valid for the lengths given.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        let error = io::Error::last_os_error();
        libc::close(fd);
        if n == bytes.len() as isize {
            Ok(())
        } else {
            Err(error)
        }
    }
}

/// The mode this platform allows, tried once.
static MODE: OnceLock<Option<Mode>> = OnceLock::new();

/// Whether this platform lets a sandbox have its own `/opt`: tried once, in a forked child that
/// binds an empty folder there, and remembered.
pub fn opt_mount_available() -> bool {
    mode().is_some()
}

fn mode() -> Option<Mode> {
    *MODE.get_or_init(|| {
        if !Path::new(OPT).is_dir() {
            return None;
        }
        let empty =
            std::env::temp_dir().join(format!("coldstart-opt-probe-{}", std::process::id()));
        std::fs::create_dir_all(&empty).ok()?;
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let modes: &[Mode] = if root {
            &[Mode::Mount, Mode::UserAndMount]
        } else {
            &[Mode::UserAndMount]
        };
        let found = modes
            .iter()
            .copied()
            .find(|&mode| Plan::new(mode, &empty).is_ok_and(|plan| probe(&plan)));
        let _ = std::fs::remove_dir(&empty);
        found
    })
}

/// Forks a child that enters `plan` and exits 0 on success; the parent waits for it.
fn probe(plan: &Plan) -> bool {
    // SAFETY: the child only makes system calls on data prepared before the fork, then
    // `_exit`s; the parent reaps exactly that child.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return false;
        }
        if pid == 0 {
            let code = i32::from(plan.enter().is_err());
            libc::_exit(code);
        }
        let mut status = 0;
        while libc::waitpid(pid, &mut status, 0) < 0 {
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return false;
            }
        }
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}

/// A folder to bind at `/opt` in each of a function's processes.
#[derive(Clone)]
pub(crate) struct OptMount {
    plan: Arc<Plan>,
    folder: std::path::PathBuf,
}

impl std::fmt::Debug for OptMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OptMount").field(&self.folder).finish()
    }
}

impl OptMount {
    /// Prepares binding `source` (absolute) at `/opt`; an error when the platform allows no
    /// mount namespace (see [`opt_mount_available`]).
    pub(crate) fn new(source: &Path) -> io::Result<Self> {
        let mode = mode().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "this platform gives processes no mount namespace of their own",
            )
        })?;
        Ok(Self {
            plan: Arc::new(Plan::new(mode, source)?),
            folder: source.to_path_buf(),
        })
    }

    /// The folder bound at `/opt`.
    pub(crate) fn folder(&self) -> &Path {
        &self.folder
    }

    /// Makes `command` start in its own mount namespace with the folder at `/opt`.
    pub(crate) fn apply(&self, command: &mut tokio::process::Command) {
        let plan = self.plan.clone();
        // SAFETY: `enter` only makes async-signal-safe system calls on data prepared before.
        unsafe {
            command.pre_exec(move || plan.enter());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_sees_the_folder_at_opt_and_the_host_does_not() {
        if !opt_mount_available() {
            // The fallback (environment pointed at the folder) is tested in coldstart-stack.
            eprintln!("no mount namespaces here: nothing to test");
            return;
        }
        let dir = std::env::temp_dir().join(format!("coldstart-opt-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("bin")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("bin/marker"), "from the layer").unwrap_or_else(|e| panic!("{e}"));
        let mut command = tokio::process::Command::new("/bin/sh");
        command.args([
            "-c",
            "cat /opt/bin/marker; id -u; touch /opt/new 2>/dev/null && echo writable",
        ]);
        OptMount::new(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .apply(&mut command);
        let out = command.output().await.unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&out.stdout);
        let uid = unsafe { libc::getuid() };
        assert_eq!(
            text,
            format!("from the layer{uid}\n"),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !Path::new("/opt/bin/marker").exists(),
            "the host's /opt is untouched"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
