//! Finding the files to import: directory trees walked (recursively by default), names matched
//! by glob or regular expression, a size limit, regular non-empty files only, in a chosen order.

use std::io;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

/// The order files are imported in.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OrderBy {
    /// Shuffled: several importers on one tree then mostly work on different files (the
    /// default, as in BuzzSaw).
    #[default]
    Random,
    /// Path, ascending.
    NameAsc,
    /// Path, descending.
    NameDesc,
    /// Smallest first.
    SizeAsc,
    /// Largest first.
    SizeDesc,
}

/// A file found, with its size on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes, as found.
    pub size: u64,
}

/// Which files to import: the `directories`, `names`, `name_regex`, `recursive`, `size_limit`,
/// `order_by` and `files` keys of the `files` source.
#[derive(Clone, Debug)]
pub struct Selection {
    directories: Vec<PathBuf>,
    names: Vec<Regex>,
    recursive: bool,
    size_limit: Option<u64>,
    order_by: OrderBy,
    files: Vec<PathBuf>,
}

/// A name pattern that is not a valid glob or regular expression.
#[derive(Debug, thiserror::Error)]
#[error("invalid name pattern `{pattern}`: {message}")]
pub struct PatternError {
    pattern: String,
    message: String,
}

impl Selection {
    /// Files under `directories` whose name matches one of `globs` or `regexes` (all files
    /// when both are empty), plus the explicit `files`.
    ///
    /// # Errors
    ///
    /// A pattern that does not compile.
    pub fn new(
        directories: Vec<PathBuf>,
        globs: &[String],
        regexes: &[String],
        files: Vec<PathBuf>,
    ) -> Result<Self, PatternError> {
        let mut names = Vec::with_capacity(globs.len() + regexes.len());
        for glob in globs {
            names.push(compile(glob, &glob_to_regex(glob))?);
        }
        for regex in regexes {
            names.push(compile(regex, regex)?);
        }
        Ok(Selection {
            directories,
            names,
            recursive: true,
            size_limit: None,
            order_by: OrderBy::Random,
            files,
        })
    }

    /// Whether to descend into subdirectories (default true).
    #[must_use]
    pub fn recursive(mut self, recursive: bool) -> Self {
        self.recursive = recursive;
        self
    }

    /// Skips files larger than this many bytes (on disk).
    #[must_use]
    pub fn size_limit(mut self, limit: Option<u64>) -> Self {
        self.size_limit = limit;
        self
    }

    /// The import order.
    #[must_use]
    pub fn order_by(mut self, order: OrderBy) -> Self {
        self.order_by = order;
        self
    }

    fn name_matches(&self, path: &Path) -> bool {
        if self.names.is_empty() {
            return true;
        }
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            return false;
        };
        self.names.iter().any(|pattern| pattern.is_match(name))
    }

    /// Walks the trees (blocking). Returns the files found, in order, and the paths that could
    /// not be read (a missing directory, a permission error) with their errors.
    pub fn find(&self) -> (Vec<Candidate>, Vec<(PathBuf, io::Error)>) {
        let mut found = Vec::new();
        let mut errors = Vec::new();
        let mut pending: Vec<PathBuf> = self.directories.clone();
        let mut first_level = pending.len();
        while let Some(directory) = pending.pop() {
            let descend = self.recursive || first_level > 0;
            first_level = first_level.saturating_sub(1);
            if !descend {
                continue;
            }
            let entries = match std::fs::read_dir(&directory) {
                Ok(entries) => entries,
                Err(error) => {
                    errors.push((directory, error));
                    continue;
                }
            };
            for entry in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(error) => {
                        errors.push((directory.clone(), error));
                        continue;
                    }
                };
                let path = entry.path();
                // Follows symbolic links: a link to a file is imported (once: files are known
                // by content), a link to a directory is walked only when recursive.
                let metadata = match std::fs::metadata(&path) {
                    Ok(metadata) => metadata,
                    Err(error) => {
                        errors.push((path, error));
                        continue;
                    }
                };
                if metadata.is_dir() {
                    if self.recursive && !entry.file_type().is_ok_and(|t| t.is_symlink()) {
                        pending.push(path);
                    }
                } else if metadata.is_file() && self.name_matches(&path) {
                    self.consider(path, metadata.len(), &mut found);
                }
            }
        }
        for path in &self.files {
            match std::fs::metadata(path) {
                Ok(metadata) if metadata.is_file() => {
                    self.consider(path.clone(), metadata.len(), &mut found);
                }
                Ok(_) => errors.push((
                    path.clone(),
                    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
                )),
                Err(error) => errors.push((path.clone(), error)),
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found.dedup_by(|a, b| a.path == b.path);
        match self.order_by {
            OrderBy::NameAsc => {}
            OrderBy::NameDesc => found.reverse(),
            OrderBy::SizeAsc => found.sort_by_key(|c| c.size),
            OrderBy::SizeDesc => found.sort_by_key(|c| std::cmp::Reverse(c.size)),
            OrderBy::Random => shuffle(&mut found),
        }
        (found, errors)
    }

    fn consider(&self, path: PathBuf, size: u64, found: &mut Vec<Candidate>) {
        if size == 0 || self.size_limit.is_some_and(|limit| size > limit) {
            return;
        }
        found.push(Candidate { path, size });
    }
}

fn compile(pattern: &str, regex: &str) -> Result<Regex, PatternError> {
    Regex::new(regex).map_err(|error| PatternError {
        pattern: pattern.to_owned(),
        message: error.to_string(),
    })
}

/// A shell glob over a file name as an anchored regular expression: `*`, `?`, `[abc]`,
/// `[!abc]` and `{a,b}`.
fn glob_to_regex(glob: &str) -> String {
    let mut regex = String::with_capacity(glob.len() * 2 + 2);
    regex.push('^');
    let mut chars = glob.chars().peekable();
    let mut braces = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '*' => regex.push_str(".*"),
            '?' => regex.push('.'),
            '[' => {
                regex.push('[');
                if chars.peek() == Some(&'!') {
                    chars.next();
                    regex.push('^');
                }
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    if c == '\\' || c == '[' {
                        regex.push('\\');
                    }
                    regex.push(c);
                }
                regex.push(']');
            }
            '{' => {
                braces += 1;
                regex.push_str("(?:");
            }
            '}' if braces > 0 => {
                braces -= 1;
                regex.push(')');
            }
            ',' if braces > 0 => regex.push('|'),
            other => regex.push_str(&regex::escape(other.encode_utf8(&mut [0; 4]))),
        }
    }
    regex.push('$');
    regex
}

/// Fisher-Yates with a small xorshift generator seeded from the clock and the process id:
/// different importers get different orders, no randomness crate needed.
fn shuffle<T>(items: &mut [T]) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos ^ (u64::from(std::process::id()) << 32) | 1;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let j = (state % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(candidates: &[Candidate], root: &Path) -> Vec<String> {
        candidates
            .iter()
            .map(|c| c.path.strip_prefix(root).unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn globs() {
        let cases = [
            ("*.log", "messages.log", true),
            ("*.log", "messages.log.1", false),
            ("messages*", "messages.2.gz", true),
            ("*.{gz,bz2}", "a.bz2", true),
            ("*.{gz,bz2}", "a.xz", false),
            ("log.?", "log.1", true),
            ("log.[!0-4]", "log.3", false),
            ("log.[!0-4]", "log.7", true),
            ("a+b(c).log", "a+b(c).log", true),
        ];
        for (glob, name, expected) in cases {
            let regex = Regex::new(&glob_to_regex(glob)).unwrap();
            assert_eq!(regex.is_match(name), expected, "{glob} vs {name}");
        }
    }

    #[test]
    fn walks_filters_and_orders() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("top.log"), "x\n").unwrap();
        std::fs::write(root.join("a/mid.log"), "xx\n").unwrap();
        std::fs::write(root.join("a/b/deep.log.gz"), "xxx\n").unwrap();
        std::fs::write(root.join("a/b/big.log"), vec![b'x'; 1000]).unwrap();
        std::fs::write(root.join("a/empty.log"), "").unwrap();
        std::fs::write(root.join("a/other.txt"), "x\n").unwrap();
        let globs = ["*.log".to_owned(), "*.log.gz".to_owned()];
        let selection = Selection::new(vec![root.into()], &globs, &[], vec![])
            .unwrap()
            .size_limit(Some(100))
            .order_by(OrderBy::NameAsc);
        let (found, errors) = selection.find();
        assert!(errors.is_empty());
        assert_eq!(
            names(&found, root),
            ["a/b/deep.log.gz", "a/mid.log", "top.log"]
        );

        let (found, _) = selection.clone().order_by(OrderBy::SizeDesc).find();
        assert_eq!(
            names(&found, root),
            ["a/b/deep.log.gz", "a/mid.log", "top.log"]
        );

        let (found, _) = selection.recursive(false).find();
        assert_eq!(names(&found, root), ["top.log"]);

        let regex = Selection::new(vec![root.into()], &[], &["^mid\\.".to_owned()], vec![])
            .unwrap()
            .find()
            .0;
        assert_eq!(names(&regex, root), ["a/mid.log"]);

        let missing = Selection::new(vec![root.join("nope")], &[], &[], vec![])
            .unwrap()
            .find();
        assert!(missing.0.is_empty());
        assert_eq!(missing.1.len(), 1);
    }

    #[test]
    fn random_order_is_a_permutation() {
        let mut items: Vec<u32> = (0..100).collect();
        shuffle(&mut items);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
