//! Write: the only stage that writes files. An in-memory output tree is written to a sibling temporary directory
//! and swapped in whole, so a failed or killed build leaves the previous output untouched.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Output files by path relative to the output directory (`/`-separated), in a stable order, with the permission
/// bits of the files that must keep their own (files copied from the source plugin, such as executable scripts).
///
/// It dereferences to the map of files, so emitters insert bytes as into a `BTreeMap`; [`OutputTree::insert_with_mode`]
/// also records a mode. A file without a recorded mode is written with the default permissions (`0o666` less the
/// umask).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputTree {
    pub files: BTreeMap<String, Vec<u8>>,
    /// Permission bits (`0o7777` at most; set-id bits are never written) by output path.
    pub modes: BTreeMap<String, u32>,
}

impl OutputTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file that must be written with the permission bits `mode` (e.g. `0o755` for a script).
    pub fn insert_with_mode(&mut self, path: String, bytes: Vec<u8>, mode: u32) {
        self.modes.insert(path.clone(), mode & 0o777);
        self.files.insert(path, bytes);
    }

    /// The permission bits recorded for `path`, if any.
    pub fn mode(&self, path: &str) -> Option<u32> {
        self.modes.get(path).copied()
    }
}

impl Deref for OutputTree {
    type Target = BTreeMap<String, Vec<u8>>;
    fn deref(&self) -> &Self::Target {
        &self.files
    }
}

impl DerefMut for OutputTree {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.files
    }
}

impl<'a> IntoIterator for &'a OutputTree {
    type Item = (&'a String, &'a Vec<u8>);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Vec<u8>>;
    fn into_iter(self) -> Self::IntoIter {
        self.files.iter()
    }
}

impl FromIterator<(String, Vec<u8>)> for OutputTree {
    fn from_iter<I: IntoIterator<Item = (String, Vec<u8>)>>(iter: I) -> Self {
        OutputTree {
            files: iter.into_iter().collect(),
            modes: BTreeMap::new(),
        }
    }
}

/// One output file: its bytes, shared with the engine's memo, and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Arc<[u8]>,
    /// The hash of the bytes and the mode.
    pub hash: u64,
    /// Permission bits the file must have (a copied script's `0o755`); `None`: the default.
    pub mode: Option<u32>,
}

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Blob {
        Blob::with_mode(bytes, None)
    }

    pub fn with_mode(bytes: Vec<u8>, mode: Option<u32>) -> Blob {
        Blob {
            hash: hash_of(&(hash_bytes(&bytes), mode)),
            bytes: bytes.into(),
            mode,
        }
    }
}

/// The files of an output tree as blobs, with their modes.
pub fn blobs(tree: OutputTree) -> Outputs {
    let OutputTree { files, modes } = tree;
    files
        .into_iter()
        .map(|(p, b)| {
            let mode = modes.get(&p).copied();
            (p, Blob::with_mode(b, mode))
        })
        .collect()
}

/// A 64-bit hash of anything hashable: SipHash with fixed keys, the same in every run of one build of skillbook.
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The hash of an output file's bytes.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    hash_of(bytes)
}

/// Every output file of a build, by path.
pub type Outputs = BTreeMap<String, Blob>;

/// What a commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Files whose bytes were written (new, or changed since the previous commit), in path order.
    pub written: Vec<String>,
    /// Files hard-linked from the previous output, their bytes unchanged.
    pub linked: usize,
}

/// The file that marks a directory as skillbook's output, so that no other directory is ever replaced.
pub const MARKER: &str = ".skillbook-output";

/// Writes `tree` to `out`, replacing what was there only once the new tree is complete.
pub fn commit(out: &Path, tree: &OutputTree) -> io::Result<()> {
    commit_outputs(out, &blobs(tree.clone()), None, false).map(|_| ())
}

/// Writes `files` to `out` atomically: the new output is made complete in a sibling temporary directory, then swapped
/// in with one rename, so a failed or killed build leaves the previous output as it was.
///
/// `previous` has the hashes of the files the last commit to `out` wrote, by path (the caller knows them, and that
/// `out` still holds that commit). A file with the same path and hash is hard-linked from `out` instead of written
/// again (written when linking fails). With `background`, the previous output is deleted on another thread after the
/// swap (the watch loop: the reload need not wait for it); otherwise before returning.
pub fn commit_outputs(
    out: &Path,
    files: &Outputs,
    previous: Option<&HashMap<String, u64>>,
    background: bool,
) -> io::Result<Committed> {
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
    remove_stale(&parent, &name);
    let tmp = parent.join(format!(".{name}.skillbook-tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    let unchanged = |rel: &str, hash: u64| previous.is_some_and(|p| p.get(rel) == Some(&hash));
    let result = write_tree(&tmp, files, out, &unchanged).and_then(|done| {
        let trash = parent.join(format!(
            ".{name}.skillbook-trash-{}-{}",
            std::process::id(),
            TRASH.fetch_add(1, Ordering::Relaxed)
        ));
        swap(&tmp, out, &old, &trash)?;
        if trash.exists() {
            if background {
                let handle = std::thread::spawn(move || {
                    let _ = fs::remove_dir_all(trash);
                });
                if let Ok(mut list) = CLEANUP.lock() {
                    list.retain(|h| !h.is_finished());
                    list.push(handle);
                }
            } else {
                fs::remove_dir_all(&trash)?;
            }
        }
        Ok(done)
    });
    if result.is_err() && tmp.exists() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Numbers the previous outputs waiting to be deleted, so that a quick rebuild never meets the last one's.
static TRASH: AtomicUsize = AtomicUsize::new(0);

/// The threads deleting previous outputs.
static CLEANUP: Mutex<Vec<std::thread::JoinHandle<()>>> = Mutex::new(Vec::new());

/// Waits until every previous output given to a background thread is deleted (before the process exits).
pub fn finish_cleanup() {
    let list = CLEANUP
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    for h in list {
        let _ = h.join();
    }
}

/// Removes what killed builds left next to `<parent>/<name>`: the temporary directories (`.<name>.skillbook-tmp-PID`,
/// `.<name>.skillbook-trash-PID-N`) of processes that no longer run. A live process's directories are left alone.
fn remove_stale(parent: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let prefix = format!(".{name}.skillbook-");
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest
            .strip_prefix("tmp-")
            .or_else(|| rest.strip_prefix("trash-"))
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Whether a process with this id runs (or may: when unsure, true).
#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_alive(_: u32) -> bool {
    true
}

fn write_tree(
    dir: &Path,
    files: &Outputs,
    previous: &Path,
    unchanged: &dyn Fn(&str, u64) -> bool,
) -> io::Result<Committed> {
    let mut done = Committed::default();
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join(MARKER),
        b"This directory is written by skillbook and replaced whole on every build.\n",
    )?;
    let mut made: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    for (rel, blob) in files {
        if rel
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad output path {rel}"),
            ));
        }
        let path = dir.join(rel);
        if let Some(p) = path.parent() {
            if !made.contains(p) {
                fs::create_dir_all(p)?;
                made.insert(p.to_path_buf());
            }
        }
        if unchanged(rel, blob.hash) && fs::hard_link(previous.join(rel), &path).is_ok() {
            // The bytes are the same; the permission bits must be too, or the file is written again.
            if permissions(&path).is_ok_and(|p| match blob.mode {
                Some(m) => p == m,
                None => p & 0o111 == 0,
            }) {
                done.linked += 1;
                continue;
            }
            fs::remove_file(&path)?;
        }
        fs::write(&path, &blob.bytes)?;
        if let Some(m) = blob.mode {
            set_permissions(&path, m)?;
        }
        done.written.push(rel.clone());
    }
    Ok(done)
}

#[cfg(unix)]
fn permissions(path: &Path) -> io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(fs::metadata(path)?.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn permissions(_: &Path) -> io::Result<u32> {
    Ok(0o644)
}

#[cfg(unix)]
fn set_permissions(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o777))
}

#[cfg(not(unix))]
fn set_permissions(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

/// Puts `tmp` in the place of `out`; the previous output, if any, ends up at `trash` for the caller to delete.
fn swap(tmp: &Path, out: &Path, old: &Path, trash: &Path) -> io::Result<()> {
    if !out.exists() {
        return fs::rename(tmp, out);
    }
    if exchange(tmp, out).is_ok() {
        // `tmp` now holds the previous output.
        return fs::rename(tmp, trash);
    }
    if old.exists() {
        fs::remove_dir_all(old)?;
    }
    fs::rename(out, old)?;
    fs::rename(tmp, out)?;
    fs::rename(old, trash)
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

    #[cfg(unix)]
    #[test]
    fn writes_recorded_modes_also_when_reusing_a_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        let mode = |p: &str| fs::metadata(out.join(p)).unwrap().permissions().mode() & 0o777;
        let mut t = tree(&[("plain.md", "x")]);
        t.insert_with_mode("run.sh".into(), b"#!/bin/sh\n".to_vec(), 0o755);
        t.insert_with_mode("secret.txt".into(), b"s".to_vec(), 0o600);
        commit(&out, &t).unwrap();
        assert_eq!((mode("run.sh"), mode("secret.txt")), (0o755, 0o600));
        assert_eq!(mode("plain.md") & 0o111, 0);
        // Same bytes, new mode: a reused (hard-linked) file must not keep the old mode.
        let mut t2 = tree(&[("plain.md", "x"), ("run.sh", "#!/bin/sh\n")]);
        t2.insert_with_mode("secret.txt".into(), b"s".to_vec(), 0o640);
        // Even told that every file is unchanged, the write checks the modes of what it links.
        let files = blobs(t2);
        let same: HashMap<String, u64> = files.iter().map(|(k, b)| (k.clone(), b.hash)).collect();
        let done = commit_outputs(&out, &files, Some(&same), false).unwrap();
        assert_eq!(done.linked, 1, "only plain.md keeps its inode");
        assert_eq!(done.written, ["run.sh", "secret.txt"]);
        assert_eq!((mode("run.sh") & 0o111, mode("secret.txt")), (0, 0o640));
    }

    #[cfg(unix)]
    #[test]
    fn removes_what_killed_builds_left_but_not_what_live_ones_write() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        // A process id that cannot run: above the kernel's limit.
        let dead = dir.path().join(".build.skillbook-tmp-2147483000");
        let dead_trash = dir.path().join(".build.skillbook-trash-2147483000-3");
        let live = dir.path().join(format!(
            ".build.skillbook-tmp-{}",
            std::os::unix::process::parent_id()
        ));
        let other = dir.path().join(".other.skillbook-tmp-2147483000");
        for d in [&dead, &dead_trash, &live, &other] {
            fs::create_dir_all(d.join("x")).unwrap();
        }
        commit(&out, &tree(&[("a.md", "1")])).unwrap();
        assert!(!dead.exists() && !dead_trash.exists());
        assert!(live.exists() && other.exists());
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
