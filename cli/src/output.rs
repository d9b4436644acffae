//! Output for people (aligned tables) and for scripts (`--output json`).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

/// Prints a result as `format` asks: the table for people, the JSON for scripts.
pub fn print(format: Format, table: impl FnOnce() -> String, json: impl FnOnce() -> serde_json::Value) -> anyhow::Result<()> {
    match format {
        Format::Table => print!("{}", table()),
        Format::Json => println!("{}", serde_json::to_string_pretty(&json())?),
    }
    Ok(())
}

/// Columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n") + "\n"
}

/// A timestamp for a table, to the second (UTC), or `-`.
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)).map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A timestamp for JSON: RFC 3339 to the second (UTC), or None.
pub fn rfc3339(t: Option<&prost_types::Timestamp>) -> Option<String> {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A timestamp for JSON to the millisecond (UTC): for what happens
/// within a second, such as a rollout's transitions.
pub fn rfc3339_millis(t: &prost_types::Timestamp) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(paved_proto::millis_from_timestamp(t))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let t = super::table(&["NAME", "STATE"], &[vec!["hello".into(), "healthy".into()], vec!["a".into(), "failed".into()]]);
        assert_eq!(t, "NAME   STATE\nhello  healthy\na      failed\n");
    }
}
