//! Issue 12 item 2: no module of the engine or of the Winsock face imports one that imports it
//! back. A file's imports are the sibling modules it names as `super::NAME` (in `use` lines or
//! paths) outside its test module; the test looks for a circle in that graph, per folder.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The sibling modules each module of `dir` refers to (`x.rs`, or every file of `x/`, is
/// module `x`).
fn graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        // A folder module is all its files: inside them `super::super::X` names a sibling X.
        let sources = if path.is_dir() {
            let mut inner = Vec::new();
            rust_files(&path, &mut inner);
            inner
        } else if path.extension().is_some_and(|e| e == "rs") && name != "mod" {
            vec![path.clone()]
        } else {
            continue;
        };
        let text: String = sources
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .map(|t| t.split("#[cfg(test)]").next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join("\n");
        files.insert(name, text);
    }
    let names: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(name, text)| {
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let mut refs = BTreeSet::new();
            for line in code.lines() {
                let line = line.split("//").next().unwrap_or("");
                for part in line.split("super::").skip(1) {
                    let module: String = part
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    // `super::{a, b}` names items of the parent (mod.rs), not siblings.
                    if names.contains(&module) && module != *name {
                        refs.insert(module);
                    }
                }
            }
            (name.clone(), refs)
        })
        .collect()
}

/// A circle in `g`, if there is one, as the files along it.
fn circle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut c = path[at..].to_vec();
            c.push(n.to_owned());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|n| visit(n, g, &mut Vec::new(), &mut done))
}

fn check(folder: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(folder);
    let g = graph(&dir);
    assert!(g.len() >= 2, "read the modules of {folder}: {:?}", g.keys());
    if let Some(c) = circle(&g) {
        panic!("import circle in {folder}: {}", c.join(" -> "));
    }
}

#[test]
fn the_circle_finder_finds_a_circle() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(circle(&g).map(|c| c.len()), Some(4));
}

#[test]
fn the_engine_has_no_import_circle() {
    check("stack/src/engine");
}

#[test]
fn the_winsock_face_has_no_import_circle() {
    check("stack/src/winsock");
}

#[test]
fn the_driver_has_no_import_circle() {
    check("stack/src/driver");
}
