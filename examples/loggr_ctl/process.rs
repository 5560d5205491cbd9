//! `run`, `start`, `stop` and the components part of `status`: loggr's daemons as processes,
//! started in the background with a pid file and a log file in the run directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The daemons `loggr_ctl` knows (the examples built next to it).
pub(crate) const COMPONENTS: &[&str] = &[
    "syslog_server",
    "parser",
    "shipper2pgsql",
    "collector",
    "harvest",
    "loggr",
];

/// Checks the name and finds the daemon's binary next to `loggr_ctl`'s own.
pub(crate) fn binary(name: &str) -> anyhow::Result<PathBuf> {
    if !COMPONENTS.contains(&name) {
        bail!(
            "unknown component `{name}` (known: {})",
            COMPONENTS.join(", ")
        );
    }
    let path = std::env::current_exe()?.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it with `cargo build --release --all-features --example {name}`",
            path.display()
        );
    }
    Ok(path)
}

/// Where pid and log files go: `--run-dir`, else `$LOGGR_RUN_DIR`, else
/// `$XDG_RUNTIME_DIR/loggr`, else `/run/loggr` for root and `~/.local/state/loggr` otherwise.
pub(crate) fn run_dir(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = given
        .or_else(|| std::env::var_os("LOGGR_RUN_DIR").map(PathBuf::from))
        .or_else(|| std::env::var_os("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("loggr")))
        .unwrap_or_else(|| {
            if is_root() {
                PathBuf::from("/run/loggr")
            } else {
                let home =
                    std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
                home.join(".local/state/loggr")
            }
        });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .and_then(|line| line.split_whitespace().nth(1))
            == Some("0")
    })
}

fn pid_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.pid"))
}

/// The pid of the running component, if its pid file names a live process of that name (a
/// stale pid file, or one whose pid was reused by another program, says "not running").
pub(crate) fn running(dir: &Path, name: &str) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(pid_file(dir, name))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid, name).then_some(pid)
}

fn alive(pid: u32, name: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state …`: a zombie has exited.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    if state == Some('Z') {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    Path::new(std::ffi::OsStr::new(
        std::str::from_utf8(argv0).unwrap_or_default(),
    ))
    .file_name()
    .is_some_and(|file| file == name)
}

/// `run NAME -- ARGS`: the daemon in the foreground, in place of `loggr_ctl`.
pub(crate) fn run(name: &str, args: &[String]) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let binary = binary(name)?;
    let error = Command::new(&binary).args(args).exec();
    Err(error).with_context(|| format!("starting {}", binary.display()))
}

/// `start NAME -- ARGS`: the daemon in the background (its own process group, so a terminal's
/// Ctrl-C does not reach it), output appended to `NAME.log`, pid in `NAME.pid`.
pub(crate) fn start(name: &str, args: &[String], dir: &Path) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt as _;
    let binary = binary(name)?;
    if let Some(pid) = running(dir, name) {
        bail!("{name} is already running (pid {pid})");
    }
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    let mut child = Command::new(&binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id();
    std::fs::write(pid_file(dir, name), format!("{pid}\n"))?;
    // A daemon with a bad configuration or a taken port exits at once: say so now.
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            let _ = std::fs::remove_file(pid_file(dir, name));
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(5).collect();
            bail!(
                "{name} exited at once ({status}); the end of {}:\n{}",
                log_path.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(pid)
}

/// `stop NAME`: SIGTERM (the daemons drain: stop intake, wait for acknowledgements), then waits
/// up to `timeout` for the process to exit.
pub(crate) fn stop(name: &str, dir: &Path, timeout: Duration) -> anyhow::Result<Option<u32>> {
    if !COMPONENTS.contains(&name) {
        bail!(
            "unknown component `{name}` (known: {})",
            COMPONENTS.join(", ")
        );
    }
    let Some(pid) = running(dir, name) else {
        let _ = std::fs::remove_file(pid_file(dir, name));
        return Ok(None);
    };
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("running kill")?;
    if !status.success() {
        bail!("could not signal {name} (pid {pid})");
    }
    let deadline = Instant::now() + timeout;
    while alive(pid, name) {
        if Instant::now() >= deadline {
            bail!("{name} (pid {pid}) still runs {timeout:?} after SIGTERM: it may be draining; `kill -9 {pid}` loses nothing acknowledged");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(pid_file(dir, name));
    Ok(Some(pid))
}
