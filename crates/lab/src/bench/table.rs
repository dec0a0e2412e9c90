//! The Markdown tables of every benchmark document: a header line, its
//! rule, and one line per row.

/// A column of a table of `T`s: its header and what it shows of one `T`.
#[derive(Debug)]
pub struct Column<T> {
    /// The header.
    pub header: &'static str,
    /// The cell of one row.
    pub cell: fn(&T) -> String,
}

impl<T> Column<T> {
    /// A column headed `header` whose cells `cell` writes.
    pub const fn new(header: &'static str, cell: fn(&T) -> String) -> Self {
        Self { header, cell }
    }
}

/// The header line and the rule under it (`|---|` per column), without a
/// final newline.
pub fn header(headers: &[&str]) -> String {
    format!(
        "| {} |\n|{}",
        headers.join(" | "),
        "---|".repeat(headers.len())
    )
}

/// One row, without a final newline.
pub fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let cells: Vec<&str> = cells.iter().map(AsRef::as_ref).collect();
    format!("| {} |", cells.join(" | "))
}

/// A table: the header, its rule and one line per row, each line ending
/// in a newline.
pub fn table<S: AsRef<str>>(headers: &[&str], rows: impl IntoIterator<Item = Vec<S>>) -> String {
    let mut out = header(headers);
    out.push('\n');
    for cells in rows {
        out.push_str(&row(&cells));
        out.push('\n');
    }
    out
}

/// A table of `items`, one row each, in `columns`.
pub fn columns<'a, T: 'a>(columns: &[Column<T>], items: impl IntoIterator<Item = &'a T>) -> String {
    let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
    table(
        &headers,
        items
            .into_iter()
            .map(|item| columns.iter().map(|c| (c.cell)(item)).collect::<Vec<_>>()),
    )
}

/// `12 ms`, or `–` for none.
pub fn ms(value: Option<u64>) -> String {
    value.map_or("–".to_owned(), |v| format!("{v} ms"))
}

/// The number, or `–` for none.
pub fn number(value: Option<u64>) -> String {
    value.map_or("–".to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_have_a_rule_per_column_and_a_line_per_row() {
        let columns_of: [Column<(u64, Option<u64>)>; 2] = [
            Column::new("n", |r| r.0.to_string()),
            Column::new("time", |r| ms(r.1)),
        ];
        assert_eq!(
            columns(&columns_of, &[(1, Some(3)), (2, None)]),
            "| n | time |\n|---|---|\n| 1 | 3 ms |\n| 2 | – |\n"
        );
    }
}
