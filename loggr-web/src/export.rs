//! CSV and JSON-lines rendering of event lists.
//!
//! CSV cells are safe to open in a spreadsheet: a cell starting with `=`, `+`, `-`, `@`, a tab
//! or a carriage return is prefixed with `'`, so that it is never read as a formula (OWASP's
//! "CSV injection" advice), and cells are quoted as RFC 4180 says.

/// One CSV cell: formula-neutralised, then quoted when it holds `,`, `"`, CR or LF.
pub fn csv_cell(value: &str) -> String {
    let neutral = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if neutral.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

/// One CSV record, CRLF-terminated.
pub fn csv_record<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralises_formulas() {
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_record(&["1", "=x"]), "1,'=x\r\n");
    }
}
