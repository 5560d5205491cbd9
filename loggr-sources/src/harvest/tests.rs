//! Unit tests of the `harvest` source's pure parts: path filtering, configuration parsing and
//! validation, setting files aside, and directory scans.

use std::path::{Path, PathBuf};
use std::time::Duration;

use loggr_core::{Facility, Severity};

use super::read::set_aside;
use super::watch::{harvestable, scan};
use super::{HarvestConfig, HarvestDirectory, HarvestError, HarvestSource};
use crate::ingest::InputFormat;

#[test]
fn hidden_and_nested_paths() {
    assert!(harvestable(Path::new("app.log"), false));
    assert!(!harvestable(Path::new(".app.log.part"), false));
    assert!(!harvestable(Path::new("sub/app.log"), false));
    assert!(harvestable(Path::new("sub/app.log"), true));
    assert!(!harvestable(Path::new(".sub/app.log"), true));
    assert!(!harvestable(Path::new("sub/.app.log"), true));
    assert!(!harvestable(Path::new(""), true));
    assert!(!harvestable(Path::new("../app.log"), true));
}

#[test]
fn configuration_defaults_and_names() {
    let config: HarvestConfig = toml::from_str(
        r#"
        stable_after = "1.5s"
        [[directories]]
        path = "/spool/web"
        app_name = "nginx"
        facility = 16
        severity = "info"
        [[directories]]
        path = "/spool/syslog"
        app_name = "relay"
        hostname = "relay1"
        format = "rfc3164"
        "#,
    )
    .unwrap();
    assert_eq!(config.stable_after, Duration::from_millis(1500));
    assert_eq!(config.poll_interval, Duration::from_secs(5));
    assert_eq!(config.retry_after, Duration::from_secs(60));
    let [web, relay] = &config.directories[..] else {
        panic!("two directories expected")
    };
    assert_eq!(web.facility, Facility::Local0);
    assert_eq!(web.severity, Severity::Informational);
    assert_eq!(web.format, InputFormat::Raw);
    assert!(!web.hostname.is_empty());
    assert_eq!(relay.facility, Facility::User);
    assert_eq!(relay.severity, Severity::Notice);
    assert_eq!(relay.hostname, "relay1");
    assert_ne!(relay.format, InputFormat::Raw);
    assert!(HarvestSource::new(config).is_ok());

    let unknown = toml::from_str::<HarvestConfig>(
        "[[directories]]\npath = \"/x\"\napp_name = \"a\"\nowner = \"root\"\n",
    );
    assert!(unknown.unwrap_err().to_string().contains("owner"));
    let missing = toml::from_str::<HarvestConfig>("[[directories]]\npath = \"/x\"\n");
    assert!(missing.unwrap_err().to_string().contains("app_name"));
}

#[test]
fn invalid_configurations_are_refused() {
    assert!(matches!(
        HarvestSource::new(HarvestConfig::default()),
        Err(HarvestError::NoDirectories)
    ));
    let same = HarvestConfig::new([
        HarvestDirectory::new("/spool/a", "a"),
        HarvestDirectory::new("/spool/a", "b"),
    ]);
    assert!(matches!(
        HarvestSource::new(same),
        Err(HarvestError::Overlap { .. })
    ));
    let nested = || {
        HarvestConfig::new([
            HarvestDirectory::new("/spool/a/b", "b"),
            HarvestDirectory::new("/spool/a", "a"),
        ])
    };
    assert!(
        HarvestSource::new(nested()).is_ok(),
        "nesting is fine without recursion"
    );
    let error = HarvestSource::new(HarvestConfig {
        recursive: true,
        ..nested()
    })
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "directories `/spool/a` and `/spool/a/b` overlap \
         (the same files would be harvested twice)"
    );
    let zero = HarvestConfig {
        poll_interval: Duration::ZERO,
        ..HarvestConfig::new([HarvestDirectory::new("/spool/a", "a")])
    };
    assert!(matches!(
        HarvestSource::new(zero),
        Err(HarvestError::ZeroDuration { .. })
    ));
    let mut bad_zone = HarvestConfig::new([HarvestDirectory::new("/spool/a", "a")]);
    bad_zone.directories[0].format = InputFormat::Syslog(loggr_core::syslog::Format::Rfc3164);
    bad_zone.syslog.timezone = Some("Mars/Olympus_Mons".into());
    assert!(matches!(
        HarvestSource::new(bad_zone),
        Err(HarvestError::Parser { .. })
    ));
}

#[tokio::test]
async fn set_aside_never_replaces_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("up.log");
    std::fs::write(&path, "first").unwrap();
    let first = set_aside(&path, "rejected").await.unwrap();
    assert_eq!(first, dir.path().join(".up.log.rejected"));
    std::fs::write(&path, "second").unwrap();
    let second = set_aside(&path, "rejected").await.unwrap();
    assert_eq!(second, dir.path().join(".up.log.rejected.1"));
    assert!(!path.exists());
    assert_eq!(std::fs::read_to_string(first).unwrap(), "first");
    assert_eq!(std::fs::read_to_string(second).unwrap(), "second");
}

#[test]
fn scan_skips_dot_entries_and_recurses_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.log"), "a").unwrap();
    std::fs::write(dir.path().join(".b.part"), "b").unwrap();
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::create_dir_all(dir.path().join(".hidden")).unwrap();
    std::fs::write(dir.path().join("sub/c.log"), "c").unwrap();
    std::fs::write(dir.path().join(".hidden/d.log"), "d").unwrap();
    let names = |recursive| {
        let mut names: Vec<_> = scan(dir.path(), recursive)
            .unwrap()
            .into_iter()
            .map(|(path, _)| path.strip_prefix(dir.path()).unwrap().to_path_buf())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(false), [PathBuf::from("a.log")]);
    assert_eq!(
        names(true),
        [PathBuf::from("a.log"), PathBuf::from("sub/c.log")]
    );
    assert!(scan(&dir.path().join("missing"), false).is_err());
}
