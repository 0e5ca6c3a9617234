//! Learning by comparing: `burnlab cv` (stratified N-fold cross-validation) and `burnlab sweep`
//! (a grid over any config fields). Each fold or point is a `burnlab train` child process with
//! its own run folder under one parent, so that it is an ordinary run (dashboard logs, resume,
//! `report`, `runs`), and `--jobs` runs several at once.

pub mod cv;
pub mod grid;
pub mod runner;
pub mod score;
pub mod setup;
pub mod sweep;

/// Columns padded to their widest cell, two spaces apart.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate().take(cols) {
            let pad = width[i] - c.chars().count();
            s.push_str(c);
            if i + 1 < cols {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header);
    for r in rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_align() {
        let h = vec!["a".to_string(), "long".to_string()];
        let rows = vec![vec!["xyz".to_string(), "1".to_string()]];
        assert_eq!(super::table(&h, &rows), "a    long\nxyz  1");
    }
}
