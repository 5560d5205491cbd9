//! The PostgreSQL statement listing events: constant SQL fragments and `$n` placeholders
//! only — every value a user typed is a parameter.

use tokio_postgres::types::ToSql;

use crate::model::contains_pattern;
use crate::model::EventFilter;

/// A SQL statement and its bind parameters.
pub struct Statement {
    /// The SQL text: constant fragments and `$n` placeholders only.
    pub sql: String,
    /// The values of the placeholders, in order.
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Statement {
    /// The parameters as `tokio_postgres` takes them.
    pub fn param_refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// The columns of an event list row (`e` is `event`).
pub const LIST_COLUMNS: &str = "e.id, e.logtime, e.received_at, e.hostname, e.program, e.pid, \
     e.facility, e.severity, e.message, \
     ARRAY(SELECT t.name FROM tag t WHERE t.event = e.id ORDER BY t.name) AS tags";

/// The statement selecting `limit` events matching `filter`, newest first.
pub fn select(filter: &EventFilter, limit: i64) -> Statement {
    let mut clauses: Vec<String> = Vec::new();
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        clauses.push(clause.replace("$?", &format!("${}", params.len())));
    };
    if let Some(t) = filter.from {
        push("e.logtime >= $?", Box::new(t));
    }
    if let Some(t) = filter.to {
        push("e.logtime < $?", Box::new(t));
    }
    if let Some(h) = &filter.host {
        push("e.hostname = $?", Box::new(h.clone()));
    }
    if let Some(p) = &filter.program {
        push("e.program = $?", Box::new(p.clone()));
    }
    if let Some(s) = filter.severity {
        push("e.severity <= $?", Box::new(s));
    }
    if let Some(tag) = &filter.tag {
        push(
            "EXISTS (SELECT 1 FROM tag t WHERE t.event = e.id AND t.name = $?)",
            Box::new(tag.clone()),
        );
    }
    if let Some(text) = &filter.text {
        push("e.message ILIKE $?", Box::new(contains_pattern(text)));
    }
    if let Some((t, id)) = filter.cursor {
        params.push(Box::new(t));
        params.push(Box::new(id));
        clauses.push(format!(
            "(e.logtime, e.id) < (${}, ${})",
            params.len() - 1,
            params.len()
        ));
    }
    params.push(Box::new(limit));
    let where_ = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {LIST_COLUMNS} FROM event e {where_} \
         ORDER BY e.logtime DESC, e.id DESC LIMIT ${}",
        params.len()
    );
    Statement { sql, params }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_a_parameter() {
        let filter = EventFilter {
            host: Some("x' OR 1=1 --".into()),
            text: Some("50%_off".into()),
            severity: Some(4),
            ..EventFilter::default()
        };
        let st = select(&filter, 51);
        assert!(!st.sql.contains("OR 1=1"), "{}", st.sql);
        assert_eq!(st.params.len(), 4);
        assert!(st.sql.ends_with("LIMIT $4"), "{}", st.sql);
    }
}
