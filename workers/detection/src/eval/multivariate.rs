//! Loader for the generic multivariate layout (SMD style): `train/<name>.txt`,
//! `test/<name>.txt` (comma-separated floats per row) and `test_label/<name>.txt` (0/1 per row).

use std::path::Path;

use crate::eval::error::{EvalError, read_to_string};

/// One machine/entity of a multivariate data set.
#[derive(Debug, Clone, PartialEq)]
pub struct MultivariateSet {
    /// Training rows.
    pub train: Vec<Vec<f64>>,
    /// Test rows.
    pub test: Vec<Vec<f64>>,
    /// One label per test row.
    pub labels: Vec<bool>,
}

fn parse_rows(path: &Path) -> Result<Vec<Vec<f64>>, EvalError> {
    let text = read_to_string(path)?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row = line
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<Vec<f64>, _>>()
            .map_err(|e| EvalError::Parse {
                path: path.into(),
                line: n + 1,
                message: e.to_string(),
            })?;
        if let Some(first) = rows.first().map(Vec::len)
            && first != row.len()
        {
            return Err(EvalError::Parse {
                path: path.into(),
                line: n + 1,
                message: format!("expected {first} columns, got {}", row.len()),
            });
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Loads `<dir>/{train,test,test_label}/<name>.txt`.
pub fn load_multivariate(dir: &Path, name: &str) -> Result<MultivariateSet, EvalError> {
    let file = format!("{name}.txt");
    let train = parse_rows(&dir.join("train").join(&file))?;
    let test = parse_rows(&dir.join("test").join(&file))?;
    let label_path = dir.join("test_label").join(&file);
    let labels = parse_rows(&label_path)?
        .into_iter()
        .map(|r| r.first().is_some_and(|&v| v != 0.0))
        .collect::<Vec<bool>>();
    if labels.len() != test.len() {
        return Err(EvalError::Inconsistent(format!(
            "{name}: {} labels for {} test rows",
            labels.len(),
            test.len()
        )));
    }
    Ok(MultivariateSet {
        train,
        test,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_tiny_set() {
        let dir = std::env::temp_dir().join(format!("helios-mv-{}", std::process::id()));
        for (sub, body) in [
            ("train", "0.1,0.2\n0.3,0.4\n"),
            ("test", "0.1,0.2\n0.9,0.9\n"),
            ("test_label", "0\n1\n"),
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            std::fs::write(dir.join(sub).join("m-1.txt"), body).unwrap();
        }
        let s = load_multivariate(&dir, "m-1").unwrap();
        assert_eq!(s.train, vec![vec![0.1, 0.2], vec![0.3, 0.4]]);
        assert_eq!(s.labels, vec![false, true]);
        std::fs::write(dir.join("test_label").join("m-1.txt"), "0\n").unwrap();
        assert!(load_multivariate(&dir, "m-1").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
