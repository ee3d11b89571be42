//! Write: the only stage that writes files. An in-memory output tree is written to a sibling temporary directory
//! and swapped in whole, so a failed or killed build leaves the previous output untouched.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Output files by path relative to the output directory (`/`-separated), in a stable order.
pub type OutputTree = BTreeMap<String, Vec<u8>>;

/// The file that marks a directory as skillbook's output, so that no other directory is ever replaced.
pub const MARKER: &str = ".skillbook-output";

/// Writes `tree` to `out`, replacing what was there only once the new tree is complete.
pub fn commit(out: &Path, tree: &OutputTree) -> io::Result<()> {
    commit_reusing(out, tree, &|_| false).map(|_| ())
}

/// [`commit`], except that a file for which `unchanged(path)` holds (the previous commit wrote the same bytes to the
/// same path) is hard-linked from the current output instead of written again, or written when linking fails.
/// Returns how many files were linked. The watch loop uses it so that a save rewrites only what it changed.
pub fn commit_reusing(
    out: &Path,
    tree: &OutputTree,
    unchanged: &dyn Fn(&str) -> bool,
) -> io::Result<usize> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory name", out.display()),
            )
        })?
        .to_string_lossy()
        .into_owned();
    fs::create_dir_all(&parent)?;
    let old = parent.join(format!(".{name}.skillbook-old"));
    // A build killed between the two renames of a swap left the previous output here: put it back.
    if !out.exists() && old.exists() {
        fs::rename(&old, out)?;
    }
    if out.exists() {
        if !out.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a directory", out.display()),
            ));
        }
        let empty = fs::read_dir(out)?.next().is_none();
        if !empty && !out.join(MARKER).exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("refusing to replace {}: it was not written by skillbook (no {MARKER}); choose another --out", out.display()),
            ));
        }
    }
    let tmp = parent.join(format!(".{name}.skillbook-tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    let result = write_tree(&tmp, tree, out, unchanged)
        .and_then(|linked| swap(&tmp, out, &old).map(|()| linked));
    if result.is_err() && tmp.exists() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn write_tree(
    dir: &Path,
    tree: &OutputTree,
    previous: &Path,
    unchanged: &dyn Fn(&str) -> bool,
) -> io::Result<usize> {
    let mut linked = 0;
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join(MARKER),
        b"This directory is written by skillbook and replaced whole on every build.\n",
    )?;
    for (rel, bytes) in tree {
        if rel.split('/').any(|c| c == ".." || c.is_empty()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad output path {rel}"),
            ));
        }
        let path = dir.join(rel);
        if let Some(p) = path.parent() {
            fs::create_dir_all(p)?;
        }
        if unchanged(rel) && fs::hard_link(previous.join(rel), &path).is_ok() {
            linked += 1;
            continue;
        }
        fs::write(&path, bytes)?;
    }
    Ok(linked)
}

fn swap(tmp: &Path, out: &Path, old: &Path) -> io::Result<()> {
    if !out.exists() {
        return fs::rename(tmp, out);
    }
    if exchange(tmp, out).is_ok() {
        // `tmp` now holds the previous output.
        return fs::remove_dir_all(tmp);
    }
    if old.exists() {
        fs::remove_dir_all(old)?;
    }
    fs::rename(out, old)?;
    fs::rename(tmp, out)?;
    fs::remove_dir_all(old)
}

/// Atomically exchanges two paths (Linux `renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no atomic exchange",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> OutputTree {
        files
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn replaces_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        commit(&out, &tree(&[("a/x.md", "1"), ("old.md", "o")])).unwrap();
        commit(&out, &tree(&[("a/x.md", "2")])).unwrap();
        assert_eq!(fs::read_to_string(out.join("a/x.md")).unwrap(), "2");
        assert!(!out.join("old.md").exists());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("build")]);
    }

    #[test]
    fn refuses_foreign_directory() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("precious.txt"), "keep").unwrap();
        let err = commit(dir.path(), &tree(&[("a", "b")])).unwrap_err();
        assert!(err.to_string().contains("refusing"));
        assert_eq!(
            fs::read_to_string(dir.path().join("precious.txt")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn failed_write_keeps_previous_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        commit(&out, &tree(&[("x.md", "good")])).unwrap();
        assert!(commit(&out, &tree(&[("../escape", "bad")])).is_err());
        assert_eq!(fs::read_to_string(out.join("x.md")).unwrap(), "good");
    }

    #[test]
    fn restores_output_left_by_an_interrupted_swap() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        let old = dir.path().join(".build.skillbook-old");
        fs::create_dir_all(&old).unwrap();
        fs::write(old.join(MARKER), "").unwrap();
        fs::write(old.join("x.md"), "previous").unwrap();
        commit(&out, &tree(&[("y.md", "new")])).unwrap();
        assert_eq!(fs::read_to_string(out.join("y.md")).unwrap(), "new");
        assert!(!old.exists());
    }
}
