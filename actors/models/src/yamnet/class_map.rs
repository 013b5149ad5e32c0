//! `yamnet_class_map.csv`: `index,mid,display_name`, one row per output, in output order.

use crate::ModelError;

/// Reads the display names, checking that the indices run 0, 1, 2, … in order.
pub(crate) fn parse_class_map(csv: &str) -> Result<Vec<String>, ModelError> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some(header) if header.trim_start_matches('\u{feff}').starts_with("index") => {}
        other => {
            return Err(ModelError::ClassMap(format!(
                "expected the header `index,mid,display_name`, found {other:?}"
            )))
        }
    }
    let mut names = Vec::new();
    for (row, line) in lines.enumerate() {
        let fields = split_csv_line(line);
        let [index, _mid, name] = fields.as_slice() else {
            return Err(ModelError::ClassMap(format!(
                "row {row}: expected 3 fields, found {}",
                fields.len()
            )));
        };
        if index.trim().parse::<usize>().ok() != Some(row) {
            return Err(ModelError::ClassMap(format!(
                "row {row}: index `{index}` is out of order"
            )));
        }
        names.push(name.clone());
    }
    Ok(names)
}

/// Splits one CSV line; fields may be quoted (`"Narration, monologue"`, `""` for a quote).
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_names() {
        let csv = "index,mid,display_name\n0,/m/09x0r,Speech\n1,/m/0x,\"Narration, monologue\"\n2,/m/y,\"Say \"\"hi\"\"\"\n";
        assert_eq!(
            parse_class_map(csv).unwrap(),
            vec!["Speech", "Narration, monologue", "Say \"hi\""]
        );
    }

    #[test]
    fn rejects_bad_rows() {
        assert!(parse_class_map("nonsense\n").is_err());
        assert!(parse_class_map("index,mid,display_name\n1,/m/x,A\n").is_err());
        assert!(parse_class_map("index,mid,display_name\n0,A\n").is_err());
    }
}
