//! `--grid KEY=V1,V2,…`: the values of one config field, and the Cartesian product of several.

use anyhow::{Result, bail};

/// One swept config field and its values (TOML text, as `--set` takes them).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

/// One point of a grid: a value per axis, in the axes' order.
pub type Point = Vec<(String, String)>;

/// Splits at the commas outside brackets and quotes: `[],[16],[128, 64]` is three values.
fn split_values(text: &str) -> Result<Vec<String>> {
    let (mut values, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for ch in text.chars() {
        match (ch, quote) {
            ('"' | '\'', None) => quote = Some(ch),
            (c, Some(q)) if c == q => quote = None,
            ('[' | '{', None) => depth += 1,
            (']' | '}', None) => {
                depth -= 1;
                if depth < 0 {
                    bail!("unbalanced `{ch}`");
                }
            }
            (',', None) if depth == 0 => {
                values.push(std::mem::take(&mut cur).trim().to_string());
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if depth != 0 || quote.is_some() {
        bail!("unclosed bracket or quote");
    }
    values.push(cur.trim().to_string());
    Ok(values)
}

impl Axis {
    /// `KEY=V1,V2,…`.
    pub fn parse(text: &str) -> Result<Axis> {
        let Some((key, values)) = text.split_once('=') else {
            bail!("--grid {text}: expected KEY=V1,V2,… (e.g. optim.lr=0.1,0.01)");
        };
        let key = key.trim();
        let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
        if !key.split('.').all(ok) {
            bail!("--grid {text}: `{key}` is not a config key (dotted names, e.g. model.hidden)");
        }
        if values.trim().is_empty() {
            bail!("--grid {key}: no values (expected {key}=V1,V2,…)");
        }
        let values = split_values(values).map_err(|e| anyhow::anyhow!("--grid {key}: {e}"))?;
        if let Some(i) = values.iter().position(String::is_empty) {
            bail!("--grid {key}: value {} is empty", i + 1);
        }
        let mut seen = values.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != values.len() {
            bail!("--grid {key}: a value is listed twice");
        }
        Ok(Axis { key: key.to_string(), values })
    }
}

/// Every point of the grid, the last axis varying fastest.
pub fn points(axes: &[Axis]) -> Vec<Point> {
    let mut points: Vec<Point> = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((axis.key.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    points
}

/// A folder name for point `index` (from 1): `03-hidden_128x64-weight_decay_0.001`. Only
/// `[A-Za-z0-9._-]`; list brackets dropped, list commas as `x`, an empty list as `none`.
pub fn folder_name(index: usize, width: usize, point: &Point) -> String {
    let mut name = format!("{index:0width$}");
    for (key, value) in point {
        let short = key.rsplit('.').next().unwrap_or(key);
        let mut v: String = value
            .trim_matches(|c| c == '[' || c == ']' || c == '"' || c == '\'')
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| match c {
                ',' => 'x',
                c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => c,
                _ => '_',
            })
            .collect();
        if v.is_empty() {
            v = "none".into();
        }
        name.push_str(&format!("-{short}_{v}"));
    }
    name.truncate(120);
    name
}

/// `key=value key=value`, as tables and logs show a point.
pub fn describe(point: &Point) -> String {
    point.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_outside_brackets_and_quotes() {
        let a = Axis::parse("model.hidden=[],[16],[128, 64]").expect("hidden");
        assert_eq!(a.key, "model.hidden");
        assert_eq!(a.values, ["[]", "[16]", "[128, 64]"]);
        let a = Axis::parse("model.activation = relu, tanh,\"a,b\"").expect("act");
        assert_eq!(a.values, ["relu", "tanh", "\"a,b\""]);
        assert_eq!(Axis::parse("optim.lr=0.1").expect("one").values, ["0.1"]);
    }

    #[test]
    fn the_grid_is_the_cartesian_product() {
        let axes = [Axis::parse("a.x=1,2").expect("a"), Axis::parse("b.y=p,q,r").expect("b")];
        let pts = points(&axes);
        assert_eq!(pts.len(), 6);
        let s = |p: &Point| describe(p);
        assert_eq!(s(&pts[0]), "a.x=1 b.y=p");
        assert_eq!(s(&pts[2]), "a.x=1 b.y=r");
        assert_eq!(s(&pts[5]), "a.x=2 b.y=r");
        assert_eq!(points(&[]), vec![Vec::new()]);
    }

    #[test]
    fn folder_names_are_plain() {
        let p = vec![
            ("model.hidden".to_string(), "[128, 64]".to_string()),
            ("optim.weight_decay".to_string(), "1e-3".to_string()),
        ];
        assert_eq!(folder_name(3, 2, &p), "03-hidden_128x64-weight_decay_1e-3");
        let p = vec![("model.hidden".to_string(), "[]".to_string())];
        assert_eq!(folder_name(1, 1, &p), "1-hidden_none");
    }

    #[test]
    fn bad_grids_name_the_key() {
        for (text, want) in [
            ("model.hidden", "expected KEY=V1,V2"),
            ("model.hidden=", "--grid model.hidden: no values"),
            ("optim.lr=0.1,,0.2", "--grid optim.lr: value 2 is empty"),
            ("optim.lr=0.1,0.1", "--grid optim.lr: a value is listed twice"),
            ("model.hidden=[16,[32]", "--grid model.hidden: unclosed bracket"),
            ("model.hidden=16]", "--grid model.hidden: unbalanced"),
            ("model..x=1", "is not a config key"),
            ("=1,2", "is not a config key"),
        ] {
            let e = Axis::parse(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
