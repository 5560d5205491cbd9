//! The `importer` against the machine's PostgreSQL (start it with `bash scripts/services.sh`)
//! over loghub's files, plain and compressed with the real `gzip`, `bzip2`, `zstd` and `xz`:
//! each content is imported once (renamed and recompressed copies are skipped), `--readall`
//! adds no rows, two importers on one tree import each file exactly once, a killed import
//! completes on rerun without duplicates, and a file is recorded only when all its events were
//! stored.

#![cfg(all(feature = "files", feature = "postgres"))]
#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

mod support;

use support::TestDb;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn loghub(name: &str) -> PathBuf {
    let shared = std::env::var("LOGGR_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let path = shared.join("corpus/loghub").join(name);
    assert!(
        path.is_file(),
        "{} is missing (set LOGGR_SHARED_DIR)",
        path.display()
    );
    path
}

const LOGHUB: [&str; 4] = [
    "Linux_2k.log",
    "OpenSSH_2k.log",
    "Mac_2k.log",
    "Thunderbird_2k.log",
];

/// An importer configuration: every file under `tree`, BuzzSaw's stack keeping every line,
/// with the given `ledger` (an inline TOML table) and `[[sinks]]` table body.
fn importer_config(dir: &Path, file: &str, tree: &Path, ledger: &str, sink: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(
        &path,
        format!(
            r#"
[pipeline]
grace_period = "5s"

[[sources]]
type = "files"
name = "files"
directories = ["{tree}"]
format = "auto"
ledger = {ledger}

[[filters]]
type = "buzzsaw"
keep_uninteresting = true

[[sinks]]
{sink}
"#,
            tree = tree.display()
        ),
    )
    .unwrap();
    path
}

/// The PostgreSQL setup: the ledger in `url`, the events in `sink_url`.
fn config(dir: &Path, tree: &Path, url: &str, stale_after: &str, sink_url: &str) -> PathBuf {
    importer_config(
        dir,
        "importer.toml",
        tree,
        &format!(r#"{{ type = "postgres", url = "{url}", stale_after = "{stale_after}" }}"#),
        &format!(
            r#"type = "postgres"
url = "{sink_url}"
migrate = true
batch = {{ max_events = 2000, linger = "20ms" }}
retry = {{ initial_backoff = "100ms", max_backoff = "500ms", timeout = "3s", max_attempts = 5 }}"#
        ),
    )
}

/// The embedded store: SQLite ledger and sink in one file.
fn sqlite_config(dir: &Path, tree: &Path, db: &Path) -> PathBuf {
    importer_config(
        dir,
        "importer-sqlite.toml",
        tree,
        &format!(r#"{{ type = "sqlite", path = "{}" }}"#, db.display()),
        &format!(
            r#"type = "sqlite"
path = "{}"
batch = {{ max_events = 2000, linger = "20ms" }}"#,
            db.display()
        ),
    )
}

fn importer() -> Command {
    let mut command = Command::new(support::example("importer"));
    command.env("RUST_LOG", "warn,loggr_sources=info");
    command
}

fn import(config: &Path, extra: &[&str]) -> Output {
    importer()
        .arg("import")
        .args(extra)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// (examined, accepted, skipped, failed) from the summary line.
fn summary(output: &Output) -> (u64, u64, u64, u64) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|line| line.starts_with("examined "))
        .unwrap_or_else(|| {
            panic!(
                "no summary in {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .take(4)
        .map(|part| part.parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2], numbers[3])
}

fn compress(tool: &str, from: &Path, to: &Path) {
    let output = Command::new(tool)
        .arg("-c")
        .arg(from)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("`{tool}` is missing ({e}): run `bash scripts/services.sh`"));
    assert!(output.status.success(), "{tool} {}", from.display());
    std::fs::write(to, output.stdout).unwrap();
}

/// The distinct non-empty lines of these texts: what the database must hold, one row each.
fn distinct_lines(texts: &[String]) -> u64 {
    let mut lines = HashSet::new();
    for text in texts {
        for line in text.lines() {
            if !line.is_empty() {
                lines.insert(line.to_owned());
            }
        }
    }
    lines.len() as u64
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "importer failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn imports_every_compression_once_and_skips_renamed_and_recompressed_copies() {
    let db = TestDb::new("import_formats");
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    std::fs::create_dir_all(tree.join("copies")).unwrap();
    let read = |name: &str| std::fs::read_to_string(loghub(name)).unwrap();
    std::fs::copy(loghub("Linux_2k.log"), tree.join("Linux_2k.log")).unwrap();
    compress(
        "gzip",
        &loghub("OpenSSH_2k.log"),
        &tree.join("a/OpenSSH_2k.log.gz"),
    );
    compress(
        "bzip2",
        &loghub("Mac_2k.log"),
        &tree.join("a/b/Mac_2k.log.bz2"),
    );
    compress(
        "zstd",
        &loghub("Thunderbird_2k.log"),
        &tree.join("Thunderbird_2k.log.zst"),
    );
    // A distinct content, xz-compressed under a name that does not say so.
    let head: String = read("Linux_2k.log")
        .lines()
        .take(700)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.path().join("head"), &head).unwrap();
    compress(
        "xz",
        &dir.path().join("head"),
        &tree.join("a/linux-head.log"),
    );
    // Copies: renamed, and recompressed with another tool.
    std::fs::copy(loghub("Linux_2k.log"), tree.join("copies/renamed.log")).unwrap();
    compress(
        "xz",
        &loghub("OpenSSH_2k.log"),
        &tree.join("copies/OpenSSH.log.xz"),
    );

    let expected_rows = distinct_lines(&LOGHUB.map(read));
    let config = config(dir.path(), &tree, &db.url(), "1h", &db.url());

    let first = import(&config, &[]);
    assert_success(&first);
    assert_eq!(
        summary(&first),
        (7, 5, 2, 0),
        "examined, accepted, skipped, failed"
    );
    assert_eq!(db.count("SELECT count(*) FROM log"), 5);
    assert_eq!(db.count("SELECT count(*) FROM current_processing"), 0);
    // One row per distinct line: none lost, none twice (lines of the recompressed and
    // renamed copies and of `linux-head.log` are all already there).
    assert_eq!(db.count("SELECT count(*) FROM event"), expected_rows);
    // BuzzSaw's stack ran (OpenSSH's failed logins).
    assert!(db.count("SELECT count(*) FROM tag WHERE name = 'auth_failure'") > 0);

    let again = import(&config, &[]);
    assert_success(&again);
    assert_eq!(summary(&again), (7, 0, 7, 0));

    let readall = import(&config, &["--readall"]);
    assert_success(&readall);
    let (examined, accepted, _, failed) = summary(&readall);
    assert_eq!((examined, failed), (7, 0));
    assert!(accepted >= 5, "--readall imported only {accepted} files");
    assert_eq!(db.count("SELECT count(*) FROM event"), expected_rows);
    assert_eq!(db.count("SELECT count(*) FROM log"), 5);
}

/// `count` distinct files: loghub's, each line marked with the file's number.
fn marked_tree(tree: &Path, count: usize, repeat: usize) -> Vec<String> {
    std::fs::create_dir_all(tree).unwrap();
    let mut texts = Vec::new();
    for index in 0..count {
        let source = std::fs::read_to_string(loghub(LOGHUB[index % LOGHUB.len()])).unwrap();
        let mut text = String::with_capacity(source.len() * repeat + 64 * 2000);
        for round in 0..repeat {
            for line in source.lines() {
                text.push_str(line);
                text.push_str(&format!(" #file{index}.{round}\n"));
            }
        }
        let path = tree.join(format!("part-{index:03}.log"));
        std::fs::write(&path, &text).unwrap();
        if index % 3 == 1 {
            compress("gzip", &path, &tree.join(format!("part-{index:03}.log.gz")));
            std::fs::remove_file(&path).unwrap();
        }
        texts.push(text);
    }
    texts
}

#[test]
fn two_importers_on_one_tree_import_each_file_exactly_once() {
    let db = TestDb::new("import_pair");
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let texts = marked_tree(&tree, 24, 1);
    let config = self::config(dir.path(), &tree, &db.url(), "1h", &db.url());
    // Create the schema first, so that both start on an equal footing.
    let (schema, empty) = (dir.path().join("schema"), dir.path().join("empty"));
    std::fs::create_dir_all(&schema).unwrap();
    std::fs::create_dir_all(&empty).unwrap();
    let output = import(
        &self::config(&schema, &empty, &db.url(), "1h", &db.url()),
        &[],
    );
    assert_success(&output);
    assert_eq!(summary(&output), (0, 0, 0, 0));

    let spawn = || {
        importer()
            .arg("import")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let (first, second) = (
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    );
    assert_success(&first);
    assert_success(&second);
    let (examined_1, accepted_1, _, _) = summary(&first);
    let (examined_2, accepted_2, _, _) = summary(&second);
    assert_eq!((examined_1, examined_2), (24, 24));
    assert_eq!(
        accepted_1 + accepted_2,
        24,
        "each file imported by exactly one importer ({accepted_1} + {accepted_2})"
    );
    assert_eq!(db.count("SELECT count(*) FROM log"), 24);
    assert_eq!(
        db.count("SELECT count(*) FROM event"),
        distinct_lines(&texts)
    );
}

#[test]
fn a_killed_import_completes_on_rerun_without_duplicate_rows() {
    let db = TestDb::new("import_killed");
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let texts = marked_tree(&tree, 16, 4);
    let config = config(dir.path(), &tree, &db.url(), "2s", &db.url());
    let log = dir.path().join("first.log");
    let mut command = importer();
    command.arg("import").arg("--config").arg(&config);
    let first = support::Daemon::spawn_command(command, "importer", &log);
    // Kill it once it has stored some events and recorded some files, but not all.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let recorded = db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'log'");
        if recorded == 1 && db.count("SELECT count(*) FROM log") >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no file imported within 2 min");
    }
    first.kill();
    let recorded = db.count("SELECT count(*) FROM log");
    assert!(recorded < 16, "the import finished before it was killed");
    // Its locks go stale after 2 s; then a rerun takes them over.
    std::thread::sleep(Duration::from_secs(3));
    let rerun = import(&config, &[]);
    assert_success(&rerun);
    let (examined, accepted, skipped, failed) = summary(&rerun);
    assert_eq!((examined, failed), (16, 0));
    assert_eq!(
        skipped, recorded,
        "the files recorded before the kill are skipped"
    );
    assert_eq!(accepted, 16 - recorded);
    assert_eq!(db.count("SELECT count(*) FROM log"), 16);
    assert_eq!(db.count("SELECT count(*) FROM current_processing"), 0);
    assert_eq!(
        db.count("SELECT count(*) FROM event"),
        distinct_lines(&texts)
    );
}

#[test]
fn a_file_is_recorded_only_when_its_events_were_stored() {
    let db = TestDb::new("import_fail");
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::copy(loghub("OpenSSH_2k.log"), tree.join("good.log")).unwrap();
    // A gzip file cut in the middle: it cannot be read; the good one is still imported.
    compress("gzip", &loghub("Mac_2k.log"), &dir.path().join("whole.gz"));
    let whole = std::fs::read(dir.path().join("whole.gz")).unwrap();
    std::fs::write(tree.join("cut.log.gz"), &whole[..whole.len() / 2]).unwrap();
    let config = config(dir.path(), &tree, &db.url(), "1h", &db.url());
    let output = import(&config, &[]);
    assert!(
        !output.status.success(),
        "a file could not be read: the status must say so"
    );
    assert_eq!(summary(&output), (2, 1, 0, 1));
    assert_eq!(db.count("SELECT count(*) FROM log"), 1);
    // The lines of the cut file read before the error are stored; the file is not recorded,
    // so the next run tries it again.
    assert_eq!(db.count("SELECT count(*) FROM current_processing"), 0);

    // The sink cannot store anything (its database does not exist): no file is recorded,
    // no lock is left, and the status says so.
    let db2 = TestDb::new("import_nosink");
    let broken = format!("postgresql://root@127.0.0.1:5432/{}_missing", db2.name);
    std::fs::remove_file(tree.join("cut.log.gz")).unwrap();
    let config = self::config(dir.path(), &tree, &db2.url(), "1h", &broken);
    let output = importer()
        .args(["import", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert_eq!(db2.count("SELECT count(*) FROM log"), 0);
    assert_eq!(db2.count("SELECT count(*) FROM current_processing"), 0);
}

#[test]
fn the_embedded_store_imports_each_content_once_too() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("copies")).unwrap();
    let read = |name: &str| std::fs::read_to_string(loghub(name)).unwrap();
    std::fs::copy(loghub("Linux_2k.log"), tree.join("Linux_2k.log")).unwrap();
    compress(
        "gzip",
        &loghub("OpenSSH_2k.log"),
        &tree.join("OpenSSH_2k.log.gz"),
    );
    std::fs::copy(loghub("Linux_2k.log"), tree.join("copies/renamed.log")).unwrap();
    let db = dir.path().join("data/loggr.db");
    let config = sqlite_config(dir.path(), &tree, &db);
    let rows = || -> (u64, u64) {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT (SELECT count(*) FROM event), (SELECT count(*) FROM log)",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .unwrap()
    };
    let expected = distinct_lines(&[read("Linux_2k.log"), read("OpenSSH_2k.log")]);

    let first = import(&config, &[]);
    assert_success(&first);
    assert_eq!(
        summary(&first),
        (3, 2, 1, 0),
        "examined, accepted, skipped, failed"
    );
    assert_eq!(rows(), (expected, 2));
    let again = import(&config, &[]);
    assert_success(&again);
    assert_eq!(summary(&again), (3, 0, 3, 0));
    let readall = import(&config, &["--readall"]);
    assert_success(&readall);
    // Each content again; the renamed copy too when the original's lock is gone by then.
    let (examined, accepted, _, failed) = summary(&readall);
    assert_eq!((examined, failed), (3, 0));
    assert!(accepted >= 2, "--readall imported only {accepted} files");
    assert_eq!(rows(), (expected, 2), "--readall adds no row");
}
