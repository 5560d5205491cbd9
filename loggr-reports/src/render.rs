//! Rendering reports with [minijinja](https://docs.rs/minijinja) templates: the bundled ones
//! (compiled in), overridden by a user directory's files of the same name.
//!
//! A template gets three variables:
//!
//! - `events`: the selected events (see [`EventRow`](crate::query::EventRow): `logtime`,
//!   `localtime`, `hostname`, `program`, `pid`, `severity`, `facility`, `userid`, `message`,
//!   `tags`, `fields`), empty for reports that do not load them;
//! - `results`: what the report computed (Kernel: `sections`; AuthFailure: `total`, `users`,
//!   `targets`, `sources`…; see [`crate::report`]);
//! - `params`: `name`, `kind`, `period`, `start`, `end` (RFC 3339, UTC), `start_local`,
//!   `end_local` (`YYYY-MM-DD HH:MM:SS` in `timezone`), `timezone`, `tags`, `program`,
//!   `order_by`, `event_count` (all matching events), `truncated` (how many were left out by
//!   `limit`).
//!
//! Blocks trim their newline (`trim_blocks`, `lstrip_blocks`), the final newline is kept,
//! and an undefined variable is an error (a misspelt name fails loudly instead of printing
//! nothing). Nothing is HTML-escaped (templates are named `.txt`/`.csv`); the `csv` filter
//! quotes a value for a CSV field (RFC 4180) when it holds a comma, a quote or a line break.

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::ReportError;

/// The bundled templates, by name.
pub const BUNDLED: [(&str, &str); 4] = [
    ("kernel.txt", include_str!("../templates/kernel.txt")),
    (
        "auth_failure.txt",
        include_str!("../templates/auth_failure.txt"),
    ),
    ("sleep.csv", include_str!("../templates/sleep.csv")),
    ("generic.txt", include_str!("../templates/generic.txt")),
];

/// The templates a reporter renders with.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

/// Quotes a CSV field when needed.
pub fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

impl Templates {
    /// The bundled templates, then every file of `user_dir` (recursively, named by its path
    /// relative to the directory with `/`), which replaces a bundled one of the same name.
    ///
    /// # Errors
    ///
    /// An unreadable directory or file, or a template that does not compile.
    pub fn new(user_dir: Option<&Path>) -> Result<Self, ReportError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("csv", |value: Value| csv_field(&value.to_string()));
        for (name, source) in BUNDLED {
            env.add_template(name, source)
                .map_err(|source| ReportError::Template {
                    name: name.to_owned(),
                    source,
                })?;
        }
        if let Some(dir) = user_dir {
            let mut files = Vec::new();
            collect(dir, dir, &mut files)?;
            for (name, path) in files {
                let source = std::fs::read_to_string(&path)
                    .map_err(|source| ReportError::Read { path, source })?;
                env.add_template_owned(name.clone(), source)
                    .map_err(|source| ReportError::Template { name, source })?;
            }
        }
        Ok(Templates { env })
    }

    /// Renders a template by name with this context.
    ///
    /// # Errors
    ///
    /// [`ReportError::Template`]: no such template, or it failed.
    pub fn render(&self, name: &str, context: &Value) -> Result<String, ReportError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|source| ReportError::Template {
                name: name.to_owned(),
                source,
            })?;
        template
            .render(context)
            .map_err(|source| ReportError::Template {
                name: name.to_owned(),
                source,
            })
    }

    /// Renders a template given as text (a mail subject).
    ///
    /// # Errors
    ///
    /// [`ReportError::Template`].
    pub fn render_str(
        &self,
        what: &str,
        source: &str,
        context: &Value,
    ) -> Result<String, ReportError> {
        self.env
            .render_str(source, context)
            .map_err(|source| ReportError::Template {
                name: what.to_owned(),
                source,
            })
    }
}

fn collect(
    root: &Path,
    dir: &Path,
    files: &mut Vec<(String, std::path::PathBuf)>,
) -> Result<(), ReportError> {
    let read = |source| ReportError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.push((name, path));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use minijinja::context;

    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("Waking up"), "Waking up");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn a_user_template_overrides_the_bundled_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sleep.csv"), "custom {{ params.name }}\n").unwrap();
        std::fs::create_dir(dir.path().join("more")).unwrap();
        std::fs::write(dir.path().join("more/extra.txt"), "{{ results.n }}").unwrap();
        let templates = Templates::new(Some(dir.path())).unwrap();
        let cx = Value::from_serialize(
            context! { params => context! { name => "S" }, results => context! { n => 3 } },
        );
        assert_eq!(templates.render("sleep.csv", &cx).unwrap(), "custom S\n");
        assert_eq!(templates.render("more/extra.txt", &cx).unwrap(), "3");
        // Strict: a misspelt variable fails.
        let bad = Templates::new(None)
            .unwrap()
            .render_str("x", "{{ parms.name }}", &cx);
        assert!(bad.is_err());
    }
}
