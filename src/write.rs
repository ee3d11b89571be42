//! Write: the only stage that writes files. Output files are written, as they are made, to a sibling temporary directory
//! and swapped in whole, so a failed or killed build leaves the previous output untouched.

use crate::HashMap;
use std::collections::BTreeMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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

/// A 64-bit hash of anything hashable: SipHash with fixed keys, the same in every run of one build of skillbook.
pub fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The hash of an output file's bytes (the same whether they are hashed whole or piece by piece, [`FileHasher`]).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FileHasher::default();
    h.update(bytes);
    h.finish_bytes()
}

/// The hash of an output file: its bytes and the permission bits it must have.
pub fn file_hash(bytes: &[u8], mode: Option<u32>) -> u64 {
    hash_of(&(hash_bytes(bytes), mode))
}

/// Hashes a file's bytes as they are written, piece by piece: the result is [`hash_bytes`] of the whole. The bytes
/// are hashed in blocks of [`BLOCK`] with foldhash (fixed seed: the same in every run of one build of skillbook),
/// whatever the pieces: hashing every output byte with SipHash was 3% of a build's instructions.
#[derive(Default)]
pub struct FileHasher {
    /// The blocks so far, folded.
    state: u64,
    /// The bytes after the last whole block.
    tail: Vec<u8>,
    len: u64,
}

/// The bytes [`FileHasher`] hashes at a time.
const BLOCK: usize = 4096;

fn block_hash(bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(0x5b_1b00c).hash_one(bytes)
}

impl FileHasher {
    fn fold(&mut self, block: u64) {
        self.state = (self.state ^ block)
            .rotate_left(29)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if !self.tail.is_empty() {
            let take = (BLOCK - self.tail.len()).min(bytes.len());
            self.tail.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.tail.len() < BLOCK {
                return;
            }
            let h = block_hash(&self.tail);
            self.fold(h);
            self.tail.clear();
        }
        let mut blocks = bytes.chunks_exact(BLOCK);
        for b in &mut blocks {
            let h = block_hash(b);
            self.fold(h);
        }
        self.tail.extend_from_slice(blocks.remainder());
    }

    /// The hash of the bytes so far.
    pub fn finish_bytes(&self) -> u64 {
        hash_of(&(self.state, block_hash(&self.tail), self.len))
    }
}

/// An output file a unit made: its path, the hash of its bytes and mode ([`file_hash`]), and its mode. What the
/// engine's memo keeps of a file instead of its bytes: a unit taken from the memo has its files linked from the
/// previous output, which has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    pub path: String,
    pub hash: u64,
    pub mode: Option<u32>,
}

/// Where a build's output files go as they are made. Errors are kept (the first one) and reported by the sink's
/// owner at the end, so that the makers of files, often on other threads, need not carry them.
pub trait Sink: Sync {
    /// Adds a file with these bytes; returns what the memo keeps of it.
    fn put(&self, path: String, bytes: &[u8], mode: Option<u32>) -> FileRef;
    /// Adds a file whose bytes `write` writes, piece by piece (a file too large to hold twice).
    fn put_with(
        &self,
        path: String,
        write: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
    ) -> FileRef;
    /// Adds a file made by a unit taken from the memo: the previous output has it with these bytes.
    fn keep(&self, file: &FileRef);
}

/// A [`Sink`] that holds the files in memory: an [`OutputTree`] (for callers that want the bytes, and tests). Files
/// kept from the memo are taken from `previous`.
#[derive(Default)]
pub struct MemorySink {
    tree: Mutex<OutputTree>,
    previous: OutputTree,
}

impl MemorySink {
    pub fn new(previous: OutputTree) -> MemorySink {
        MemorySink {
            tree: Mutex::new(OutputTree::new()),
            previous,
        }
    }

    pub fn into_tree(self) -> OutputTree {
        self.tree.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, path: String, bytes: Vec<u8>, mode: Option<u32>) {
        let mut tree = self.tree.lock().unwrap_or_else(|e| e.into_inner());
        match mode {
            Some(m) => tree.insert_with_mode(path, bytes, m),
            None => {
                tree.modes.remove(&path);
                tree.insert(path, bytes);
            }
        }
    }
}

impl Sink for MemorySink {
    fn put(&self, path: String, bytes: &[u8], mode: Option<u32>) -> FileRef {
        let hash = file_hash(bytes, mode);
        self.add(path.clone(), bytes.to_vec(), mode);
        FileRef { path, hash, mode }
    }

    fn put_with(
        &self,
        path: String,
        write: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
    ) -> FileRef {
        let mut bytes = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = write(&mut bytes);
        self.put(path, &bytes, None)
    }

    fn keep(&self, file: &FileRef) {
        if self
            .tree
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&file.path)
        {
            return;
        }
        if let Some(b) = self.previous.get(&file.path) {
            self.add(file.path.clone(), b.clone(), file.mode);
        }
    }
}

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
    let staging = Staging::begin(out, None)?;
    for (path, bytes) in tree {
        staging.put(path.clone(), bytes, tree.mode(path));
    }
    staging.commit(false).map(|_| ())
}

/// A new output being made: a sibling temporary directory of `out` that files are written to as they are made (from
/// any thread), and that [`Staging::commit`] swaps in with one rename, so a failed or killed build leaves the previous
/// output as it was. Dropped without a commit, the directory is removed.
///
/// `previous` has the hashes of the files the last commit to `out` wrote, by path (the caller knows them, and that
/// `out` still holds that commit). A file with the same path and hash is hard-linked from `out` instead of written
/// again (written when linking fails), and a file [`Sink::keep`] names must be there. Without `previous` (a build
/// that remembers nothing: `skillbook build`), when `out` is a previous output, a file [`Sink::put`] gives is compared
/// with the file at its path in `out`, and hard-linked from it when their bytes are the same: a rebuild writes only
/// what changed, and allocates no new file for the rest.
pub struct Staging {
    out: PathBuf,
    parent: PathBuf,
    name: String,
    tmp: PathBuf,
    previous: Option<HashMap<String, u64>>,
    state: Mutex<StageState>,
    done: bool,
    /// The temporary directory started as a [`Mirror`] of the previous output: every file of `previous` is in it
    /// already (a hard link to the output's), so an unchanged file needs nothing, and a changed one is unlinked before
    /// it is written (the output's file is never written through the link).
    mirrored: bool,
    /// No `previous`, and `out` is a previous output (it has the marker): a file's bytes are compared with the file
    /// at its path in `out` (see [`Staging`]).
    compare: bool,
}

/// A copy of the output as the last commit left it, each file a hard link to the output's: the previous output,
/// brought up to date by [`Staging::commit_mirrored`] on a background thread after the swap, by linking the files that
/// commit wrote and deleting the ones it dropped. Given to [`Staging::begin_mirrored`], it is the next staging
/// directory, and a build writes only what changed instead of linking every file again. Dropped unused, it is deleted.
pub struct Mirror {
    dir: PathBuf,
    /// The hashes of its files, by path: those of the commit it mirrors.
    files: HashMap<String, u64>,
}

impl Drop for Mirror {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A [`Mirror`] being brought up to date on another thread.
pub struct MirrorHandle(Option<std::thread::JoinHandle<Option<Mirror>>>);

impl MirrorHandle {
    /// Waits for the mirror; `None` when making it failed (the next staging directory is then made from scratch).
    pub fn wait(mut self) -> Option<Mirror> {
        self.0.take().and_then(|h| h.join().ok().flatten())
    }
}

impl Drop for MirrorHandle {
    fn drop(&mut self) {
        // Waits, and deletes the mirror (dropped here).
        if let Some(h) = self.0.take() {
            let _ = h.join();
        }
    }
}

#[derive(Default)]
struct StageState {
    /// Every file staged: its hash.
    files: HashMap<String, u64>,
    made_dirs: crate::HashSet<PathBuf>,
    written: Vec<String>,
    linked: usize,
    error: Option<io::Error>,
    /// A file to keep was not in the previous output as the memo knew it.
    stale: bool,
}

/// What a staging directory holds, for its owner to decide: commit it, or drop it when nothing changed.
impl Staging {
    /// Checks that `out` may be replaced (it is skillbook's output, or empty, or absent), removes what killed builds
    /// left beside it, and makes the temporary directory.
    pub fn begin(out: &Path, previous: Option<HashMap<String, u64>>) -> io::Result<Staging> {
        Staging::begin_mirrored(out, previous, None)
    }

    /// [`Staging::begin`], starting from `mirror` when it mirrors `previous` (else it is deleted, and the staging
    /// directory starts empty).
    pub fn begin_mirrored(
        out: &Path,
        previous: Option<HashMap<String, u64>>,
        mirror: Option<Mirror>,
    ) -> io::Result<Staging> {
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
        let mirrored = match mirror {
            Some(mut m) if m.dir == tmp && previous.as_ref() == Some(&m.files) && tmp.is_dir() => {
                // Taken over: no longer deleted when `m` is dropped.
                m.dir = PathBuf::new();
                true
            }
            _ => false,
        };
        if !mirrored && tmp.exists() {
            fs::remove_dir_all(&tmp)?;
        }
        let compare = previous.is_none() && out.join(MARKER).is_file();
        let staging = Staging {
            out: out.to_path_buf(),
            parent,
            name,
            tmp,
            previous,
            state: Mutex::new(StageState::default()),
            done: false,
            mirrored,
            compare,
        };
        if !mirrored {
            fs::create_dir_all(&staging.tmp)?;
            fs::write(
                staging.tmp.join(MARKER),
                b"This directory is written by skillbook and replaced whole on every build.\n",
            )?;
        }
        Ok(staging)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StageState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, e: io::Error) {
        let mut st = self.state();
        if st.error.is_none() {
            st.error = Some(e);
        }
    }

    /// The path of `rel` in the new output, its folder made; `None` after an error, or for a bad path.
    fn target(&self, rel: &str) -> Option<PathBuf> {
        if self.state().error.is_some() {
            return None;
        }
        if rel
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty())
        {
            self.fail(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad output path {rel}"),
            ));
            return None;
        }
        let path = self.tmp.join(rel);
        if let Some(p) = path.parent() {
            if !self.state().made_dirs.contains(p) {
                if let Err(e) = fs::create_dir_all(p) {
                    self.fail(e);
                    return None;
                }
                self.state().made_dirs.insert(p.to_path_buf());
            }
        }
        Some(path)
    }

    fn unchanged(&self, rel: &str, hash: u64) -> bool {
        self.previous
            .as_ref()
            .is_some_and(|p| p.get(rel) == Some(&hash))
    }

    /// Links `rel` from the previous output if its bytes and mode are `hash` (or, comparing, are `bytes`); whether
    /// it did. Staging from a mirror, such a file is there already; another is unlinked, so that writing it cannot
    /// write through to the output.
    fn link(
        &self,
        rel: &str,
        path: &Path,
        hash: u64,
        mode: Option<u32>,
        bytes: Option<&[u8]>,
    ) -> bool {
        if self.mirrored {
            if self.unchanged(rel, hash) {
                return true;
            }
            let _ = fs::remove_file(path);
            return false;
        }
        let old = self.out.join(rel);
        let same = match bytes {
            Some(b) if self.compare => same_bytes(&old, b),
            _ => self.unchanged(rel, hash),
        };
        if !same || fs::hard_link(&old, path).is_err() {
            return false;
        }
        // The bytes are the same; the permission bits must be too, or the file is written again.
        let same = has_mode(path, mode);
        if !same {
            let _ = fs::remove_file(path);
        }
        same
    }

    /// A path given twice: the first file may be a link to the previous output's, which must never be written
    /// through, so it is removed before the second is made.
    fn unlink_if_staged(&self, rel: &str, path: &Path) {
        if !self.mirrored && self.has(rel) {
            let _ = fs::remove_file(path);
        }
    }

    fn record(&self, rel: String, hash: u64, written: bool) {
        let mut st = self.state();
        if written {
            st.written.push(rel.clone());
        } else {
            st.linked += 1;
        }
        st.files.insert(rel, hash);
    }

    /// The first error met writing, if any.
    pub fn error(&self) -> Option<io::ErrorKind> {
        self.state().error.as_ref().map(|e| e.kind())
    }

    /// Whether a file to keep was missing from the previous output (the memo knew a file the output no longer
    /// has): the build must be made again without the memo.
    pub fn stale(&self) -> bool {
        self.state().stale
    }

    /// The hash of every file staged, by path.
    pub fn hashes(&self) -> HashMap<String, u64> {
        self.state().files.clone()
    }

    /// Swaps the new output in. With `background`, the previous output is deleted on another thread after the swap
    /// (the watch loop: the reload need not wait for it); otherwise before returning.
    pub fn commit(self, background: bool) -> io::Result<Committed> {
        self.commit_mirrored(background, false).map(|(c, _)| c)
    }

    /// The same file carried over from the previous output as it is, whatever it holds (a file whose making is put
    /// off to a later build); nothing when the previous output does not have it.
    pub fn carry(&self, rel: &str) {
        let Some(&hash) = self.previous.as_ref().and_then(|p| p.get(rel)) else {
            return;
        };
        if self.state().files.contains_key(rel) {
            return;
        }
        let Some(path) = self.target(rel) else {
            return;
        };
        if self.mirrored || fs::hard_link(self.out.join(rel), &path).is_ok() {
            self.record(rel.to_string(), hash, false);
        } else {
            self.fail(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{rel} is not in the previous output"),
            ));
        }
    }

    /// [`Staging::carry`] for every file of the previous output that is not staged and that `carry` names.
    pub fn carry_rest(&self, carry: impl Fn(&str) -> bool) {
        let Some(previous) = &self.previous else {
            return;
        };
        let rest: Vec<&String> = {
            let st = self.state();
            previous
                .keys()
                .filter(|r| !st.files.contains_key(*r) && carry(r))
                .collect()
        };
        for rel in rest {
            self.carry(rel);
        }
    }

    /// Whether a file was staged at `rel`.
    pub fn has(&self, rel: &str) -> bool {
        self.state().files.contains_key(rel)
    }

    /// [`Staging::commit`]; with `mirror`, the previous output is not deleted but brought up to date on another
    /// thread, to be the next staging directory ([`Mirror`]).
    pub fn commit_mirrored(
        mut self,
        background: bool,
        mirror: bool,
    ) -> io::Result<(Committed, Option<MirrorHandle>)> {
        let (mut written, linked, files) = {
            let mut st = self.state();
            if let Some(e) = st.error.take() {
                return Err(e);
            }
            (std::mem::take(&mut st.written), st.linked, st.files.clone())
        };
        written.sort();
        // From a mirror: what the previous output had and this one has not goes.
        if self.mirrored {
            if let Some(previous) = &self.previous {
                for rel in previous.keys().filter(|r| !files.contains_key(*r)) {
                    remove_file_and_empty_dirs(&self.tmp, rel);
                }
            }
        }
        if mirror && self.out.is_dir() && exchange(&self.tmp, &self.out).is_ok() {
            // `tmp` now holds the previous output: make it a mirror of the new one.
            self.done = true;
            let (out, dir, previous) = (
                self.out.clone(),
                self.tmp.clone(),
                self.previous.take().unwrap_or_default(),
            );
            let changed = written.clone();
            let handle = std::thread::spawn(move || {
                let mut m = Mirror {
                    dir,
                    files: HashMap::default(),
                };
                // Without a previous commit's hashes, the old output's files are unknown: start again.
                if previous.is_empty() && !files.is_empty() {
                    return None;
                }
                for rel in previous.keys().filter(|r| !files.contains_key(*r)) {
                    remove_file_and_empty_dirs(&m.dir, rel);
                }
                for rel in &changed {
                    let path = m.dir.join(rel);
                    let _ = fs::remove_file(&path);
                    if let Some(p) = path.parent() {
                        fs::create_dir_all(p).ok()?;
                    }
                    fs::hard_link(out.join(rel), &path).ok()?;
                }
                // A file that is new but was linked (a kept unit) is not in `changed`: link what is missing.
                for rel in files.keys().filter(|r| !previous.contains_key(*r)) {
                    let path = m.dir.join(rel);
                    if !path.exists() {
                        if let Some(p) = path.parent() {
                            fs::create_dir_all(p).ok()?;
                        }
                        fs::hard_link(out.join(rel), &path).ok()?;
                    }
                }
                m.files = files;
                Some(m)
            });
            return Ok((
                Committed { written, linked },
                Some(MirrorHandle(Some(handle))),
            ));
        }
        let old = self.parent.join(format!(".{}.skillbook-old", self.name));
        let trash = self.parent.join(format!(
            ".{}.skillbook-trash-{}-{}",
            self.name,
            std::process::id(),
            TRASH.fetch_add(1, Ordering::Relaxed)
        ));
        swap(&self.tmp, &self.out, &old, &trash)?;
        self.done = true;
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
        Ok((Committed { written, linked }, None))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done && self.tmp.exists() {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

impl Sink for Staging {
    fn put(&self, rel: String, bytes: &[u8], mode: Option<u32>) -> FileRef {
        let hash = file_hash(bytes, mode);
        if let Some(path) = self.target(&rel) {
            self.unlink_if_staged(&rel, &path);
            if self.link(&rel, &path, hash, mode, Some(bytes)) {
                self.record(rel.clone(), hash, false);
            } else {
                match fs::write(&path, bytes).and_then(|()| match mode {
                    Some(m) => set_permissions(&path, m),
                    None => Ok(()),
                }) {
                    Ok(()) => self.record(rel.clone(), hash, true),
                    Err(e) => self.fail(e),
                }
            }
        }
        FileRef {
            path: rel,
            hash,
            mode,
        }
    }

    fn put_with(
        &self,
        rel: String,
        write: &mut dyn FnMut(&mut dyn io::Write) -> io::Result<()>,
    ) -> FileRef {
        let mut file = FileRef {
            path: rel,
            hash: 0,
            mode: None,
        };
        let Some(path) = self.target(&file.path) else {
            return file;
        };
        if self.mirrored {
            // A link to the output's file: never written through.
            let _ = fs::remove_file(&path);
        } else {
            self.unlink_if_staged(&file.path, &path);
        }
        // Comparing, the previous output's file is read alongside; otherwise the file is simply written.
        let old = self.compare.then(|| self.out.join(&file.path));
        let mut w = HashingWriter {
            inner: CompareWriter::new(old.as_deref(), &path),
            hasher: FileHasher::default(),
        };
        match write(&mut w).and_then(|()| w.inner.finish()) {
            Ok(linked) => {
                file.hash = hash_of(&(w.hasher.finish_bytes(), None::<u32>));
                // Linked, or unchanged since the previous output: not counted as written (its bytes are the same).
                let written = !linked && !self.unchanged(&file.path, file.hash);
                self.record(file.path.clone(), file.hash, written);
            }
            Err(e) => self.fail(e),
        }
        file
    }

    fn keep(&self, file: &FileRef) {
        if self.state().files.get(&file.path) == Some(&file.hash) {
            return;
        }
        let Some(path) = self.target(&file.path) else {
            return;
        };
        if self.link(&file.path, &path, file.hash, file.mode, None) {
            self.record(file.path.clone(), file.hash, false);
        } else {
            let mut st = self.state();
            st.stale = true;
            if st.error.is_none() {
                st.error = Some(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} is not in the previous output", file.path),
                ));
            }
        }
    }
}

/// The previous output's file at `path`, open for reading, with its length, when it is a regular file (not a link
/// to one).
fn previous_file(path: &Path) -> Option<(fs::File, u64)> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => Some((fs::File::open(path).ok()?, m.len())),
        _ => None,
    }
}

/// Whether the file at `path` has the permission bits `mode` (`None`: the default ones, with no execute bit).
fn has_mode(path: &Path, mode: Option<u32>) -> bool {
    permissions(path).is_ok_and(|p| match mode {
        Some(m) => p == m,
        None => p & 0o111 == 0,
    })
}

/// Whether `path` is a regular file (not a link to one) that holds exactly `bytes`.
fn same_bytes(path: &Path, bytes: &[u8]) -> bool {
    use io::Read;
    let Some((mut f, _)) = previous_file(path).filter(|(_, len)| *len == bytes.len() as u64) else {
        return false;
    };
    let mut buf = [0u8; 1 << 14];
    let mut rest = bytes;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return rest.is_empty(),
            Ok(n) if n <= rest.len() && buf[..n] == rest[..n] => rest = &rest[n..],
            Ok(_) => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// A streamed file's writer. When the previous output may hold the same bytes: while what is written matches the
/// previous output's file (read alongside), nothing is written; at the first difference the new file is made, with
/// the bytes that matched copied from the previous file, and written on from there. [`CompareWriter::finish`] links
/// the previous file when all of it matched (with default permissions, as a streamed file is written), else ends the
/// new file. Without a previous file, the new file is made at the first write (or at the end) and written.
struct CompareWriter {
    /// The previous output's file, read as far as what was written matched; `None` once writing.
    old: Option<io::BufReader<fs::File>>,
    old_path: PathBuf,
    path: PathBuf,
    matched: u64,
    new: Option<io::BufWriter<fs::File>>,
}

impl CompareWriter {
    /// A writer of `path`, comparing with `old` when it is given and is a previous output's regular file.
    fn new(old: Option<&Path>, path: &Path) -> CompareWriter {
        let reader = old
            .and_then(previous_file)
            .map(|(f, _)| io::BufReader::with_capacity(1 << 16, f));
        CompareWriter {
            old: reader,
            old_path: old.map(Path::to_path_buf).unwrap_or_default(),
            path: path.to_path_buf(),
            matched: 0,
            new: None,
        }
    }

    /// Stops comparing: makes the new file, with the bytes that matched so far copied from the previous file.
    fn diverge(&mut self) -> io::Result<&mut io::BufWriter<fs::File>> {
        if self.new.is_none() {
            let mut new = io::BufWriter::with_capacity(1 << 16, fs::File::create(&self.path)?);
            if self.old.take().is_some() && self.matched > 0 {
                let mut again = io::Read::take(fs::File::open(&self.old_path)?, self.matched);
                if io::copy(&mut again, &mut new)? != self.matched {
                    return Err(io::Error::other(
                        "the previous output changed while it was compared",
                    ));
                }
            }
            self.new = Some(new);
        }
        Ok(self.new.as_mut().expect("made above"))
    }

    /// Ends the file: links the previous one if every byte matched and it has no more; whether it did.
    fn finish(mut self) -> io::Result<bool> {
        if let Some(old) = self.old.as_mut() {
            let at_end = io::BufRead::fill_buf(old).is_ok_and(|rest| rest.is_empty());
            if at_end
                && fs::hard_link(&self.old_path, &self.path).is_ok()
                && has_mode(&self.path, None)
            {
                return Ok(true);
            }
            let _ = fs::remove_file(&self.path);
        }
        let new = self.diverge()?;
        io::Write::flush(new)?;
        Ok(false)
    }
}

impl io::Write for CompareWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(old) = self.old.as_mut() {
            let mut rest = buf;
            let mut same = true;
            while !rest.is_empty() {
                let have = match io::BufRead::fill_buf(old) {
                    Ok(have) => have,
                    Err(_) => {
                        same = false;
                        break;
                    }
                };
                let n = have.len().min(rest.len());
                if n == 0 || have[..n] != rest[..n] {
                    same = false;
                    break;
                }
                io::BufRead::consume(old, n);
                rest = &rest[n..];
            }
            if same {
                self.matched += buf.len() as u64;
                return Ok(buf.len());
            }
            // The new file gets what matched before `buf`, then all of `buf` (of which a part may have matched).
        }
        let new = self.diverge()?;
        new.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.new.as_mut() {
            Some(new) => new.flush(),
            None => Ok(()),
        }
    }
}

/// Writes through to `inner`, hashing what it writes.
struct HashingWriter<W: io::Write> {
    inner: W,
    hasher: FileHasher,
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
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

/// Removes `dir/rel`, and the folders above it that it leaves empty (up to `dir`).
fn remove_file_and_empty_dirs(dir: &Path, rel: &str) {
    let path = dir.join(rel);
    if fs::remove_file(&path).is_err() {
        return;
    }
    let mut p = path.parent();
    while let Some(d) = p {
        if d == dir || fs::remove_dir(d).is_err() {
            break;
        }
        p = d.parent();
    }
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

    /// The names in `dir`: what a build left beside its output.
    fn names_in(dir: &Path) -> Vec<std::ffi::OsString> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    }

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

    #[cfg(unix)]
    #[test]
    fn a_rebuild_links_the_files_whose_bytes_are_the_same_as_the_previous_outputs() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        let ino = |p: &str| fs::metadata(out.join(p)).unwrap().ino();
        commit(
            &out,
            &tree(&[
                ("same.md", "kept"),
                ("changed.md", "old"),
                ("edited.md", "as built"),
                ("gone.md", "x"),
                ("d/deep.md", "deep"),
            ]),
        )
        .unwrap();
        let before = (ino("same.md"), ino("changed.md"), ino("d/deep.md"));
        // Someone edits a file of the output by hand (same length): its bytes are no longer what was built.
        fs::write(out.join("edited.md"), "by hand!").unwrap();
        let staging = Staging::begin(&out, None).unwrap();
        for (rel, bytes) in [
            ("same.md", "kept"),
            ("changed.md", "new"),
            ("edited.md", "as built"),
            ("new.md", "n"),
            ("d/deep.md", "deep"),
        ] {
            staging.put(rel.into(), bytes.as_bytes(), None);
        }
        let done = staging.commit(false).unwrap();
        assert_eq!(done.linked, 2, "same.md and d/deep.md");
        assert_eq!(done.written, ["changed.md", "edited.md", "new.md"]);
        assert_eq!(ino("same.md"), before.0, "linked, not written again");
        assert_eq!(ino("d/deep.md"), before.2);
        assert_ne!(ino("changed.md"), before.1);
        assert_eq!(fs::read_to_string(out.join("changed.md")).unwrap(), "new");
        assert_eq!(
            fs::read_to_string(out.join("edited.md")).unwrap(),
            "as built"
        );
        assert!(!out.join("gone.md").exists());
        // Only one name is left for each file: the previous output is gone.
        assert_eq!(fs::metadata(out.join("same.md")).unwrap().nlink(), 1);
        let left = names_in(dir.path());
        assert_eq!(left, ["build"], "{left:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_streamed_file_is_linked_when_it_is_the_previous_outputs_and_written_from_where_it_differs()
    {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let cases: [(&str, String); 5] = [
            ("same.txt", big.clone()),
            ("middle.txt", big.replacen("line 9999\n", "line 9999!\n", 1)),
            ("shorter.txt", big[..big.len() - 7].to_string()),
            ("longer.txt", format!("{big}and more\n")),
            ("first.txt", format!("X{}", &big[1..])),
        ];
        let staging = Staging::begin(&out, None).unwrap();
        for (rel, _) in &cases {
            staging.put_with(rel.to_string(), &mut |w| w.write_all(big.as_bytes()));
        }
        staging.commit(false).unwrap();
        let ino = |p: &str| fs::metadata(out.join(p)).unwrap().ino();
        let before: Vec<u64> = cases.iter().map(|(rel, _)| ino(rel)).collect();

        let staging = Staging::begin(&out, None).unwrap();
        let mut hashes = Vec::new();
        for (rel, text) in &cases {
            // In pieces of odd sizes, across the reader's buffer.
            let made = staging.put_with(rel.to_string(), &mut |w| {
                for piece in text.as_bytes().chunks(4099) {
                    w.write_all(piece)?;
                }
                Ok(())
            });
            hashes.push(made.hash);
        }
        let done = staging.commit(false).unwrap();
        assert_eq!(done.linked, 1, "{:?}", done.written);
        assert_eq!(
            done.written,
            ["first.txt", "longer.txt", "middle.txt", "shorter.txt"]
        );
        for (((rel, text), was), hash) in cases.iter().zip(&before).zip(&hashes) {
            let now = fs::read_to_string(out.join(rel)).unwrap();
            assert!(
                now == *text,
                "{rel}: {} bytes, expected {}",
                now.len(),
                text.len()
            );
            assert_eq!(*hash, file_hash(text.as_bytes(), None), "{rel}");
            assert_eq!(ino(rel) == *was, *rel == "same.txt", "{rel}");
        }
    }

    #[test]
    fn a_path_given_twice_never_writes_through_to_the_previous_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        commit(&out, &tree(&[("a.md", "a"), ("s.txt", "s")])).unwrap();
        let staging = Staging::begin(&out, None).unwrap();
        // Linked from the previous output, then given again with other bytes.
        staging.put("a.md".into(), b"a", None);
        staging.put("a.md".into(), b"other", None);
        staging.put("s.txt".into(), b"s", None);
        staging.put_with("s.txt".into(), &mut |w| w.write_all(b"streamed"));
        // Dropped: the previous output is what it was.
        drop(staging);
        assert_eq!(fs::read_to_string(out.join("a.md")).unwrap(), "a");
        assert_eq!(fs::read_to_string(out.join("s.txt")).unwrap(), "s");
    }

    #[cfg(unix)]
    #[test]
    fn a_rebuild_never_links_a_symlink_or_a_folder_of_the_previous_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        commit(&out, &tree(&[("a.md", "a"), ("b/c.md", "c")])).unwrap();
        let elsewhere = dir.path().join("elsewhere.md");
        fs::write(&elsewhere, "a").unwrap();
        fs::remove_file(out.join("a.md")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, out.join("a.md")).unwrap();
        let staging = Staging::begin(&out, None).unwrap();
        staging.put("a.md".into(), b"a", None);
        // Where the previous output has a folder.
        staging.put("b".into(), b"", None);
        let done = staging.commit(false).unwrap();
        assert_eq!((done.linked, done.written.len()), (0, 2));
        assert!(!fs::symlink_metadata(out.join("a.md"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(out.join("b").is_file());
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
    fn a_write_that_fails_after_the_path_checks_fails_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        commit(&out, &tree(&[("x.md", "good")])).unwrap();
        let staging = Staging::begin(&out, None).unwrap();
        staging.put("a/b.md".into(), b"b", None);
        // A file where the folder `a` is: the write fails (the path checks passed).
        staging.put("a".into(), b"not a folder", None);
        staging.put("x.md".into(), b"new", None);
        assert!(staging.commit(false).is_err());
        assert_eq!(fs::read_to_string(out.join("x.md")).unwrap(), "good");
        // Nothing of the failed build is left beside the output.
        let left = names_in(dir.path());
        assert_eq!(left, ["build"], "{left:?}");
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
        let same: HashMap<String, u64> = t2
            .iter()
            .map(|(k, b)| (k.clone(), file_hash(b, t.mode(k))))
            .collect();
        let staging = Staging::begin(&out, Some(same)).unwrap();
        for (k, b) in &t2 {
            staging.put(k.clone(), b, t2.mode(k));
        }
        let done = staging.commit(false).unwrap();
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
    fn a_file_hashes_the_same_whole_or_in_pieces() {
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = hash_bytes(&bytes);
        for cut in [
            0, 1, 7, 8, 63, 64, 65, 4095, 4096, 4097, 8191, 8192, 8193, 19_999, 20_000,
        ] {
            let mut h = FileHasher::default();
            h.update(&bytes[..cut]);
            h.update(&bytes[cut..]);
            assert_eq!(h.finish_bytes(), whole, "cut at {cut}");
        }
        // Many pieces of every size, across block boundaries.
        for size in [1, 3, 1000, 4095, 4097, 5000] {
            let mut h = FileHasher::default();
            for piece in bytes.chunks(size) {
                h.update(piece);
            }
            assert_eq!(h.finish_bytes(), whole, "pieces of {size}");
        }
        assert_ne!(hash_bytes(b"ab"), hash_bytes(b"ab\0"));
        // A change in any block, or in the tail, changes the hash.
        for at in [0, 4095, 4096, 12_000, 19_999] {
            let mut other = bytes.clone();
            other[at] ^= 1;
            assert_ne!(hash_bytes(&other), whole, "byte {at}");
        }
    }

    #[test]
    fn streamed_files_and_kept_files_are_committed_and_a_dropped_stage_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        let staging = Staging::begin(&out, None).unwrap();
        let a = staging.put("a.md".into(), b"aaa", None);
        let big = staging.put_with("big.txt".into(), &mut |w| {
            for i in 0..1000 {
                writeln!(w, "line {i}")?;
            }
            Ok(())
        });
        let first = staging.hashes();
        staging.commit(false).unwrap();
        let text = fs::read_to_string(out.join("big.txt")).unwrap();
        assert_eq!(big.hash, file_hash(text.as_bytes(), None));

        // The next build keeps a.md (the memo knew it) and writes big.txt again with the same bytes.
        let staging = Staging::begin(&out, Some(first.clone())).unwrap();
        staging.keep(&a);
        staging.put("new.md".into(), b"n", None);
        staging.put_with("big.txt".into(), &mut |w| w.write_all(text.as_bytes()));
        let done = staging.commit(false).unwrap();
        assert_eq!(done.written, ["new.md"]);
        assert_eq!(done.linked, 2);
        assert_eq!(fs::read_to_string(out.join("a.md")).unwrap(), "aaa");

        // A file to keep that the previous output does not have: stale, and the stage is dropped whole.
        let staging = Staging::begin(&out, Some(first)).unwrap();
        staging.keep(&FileRef {
            path: "gone.md".into(),
            hash: 1,
            mode: None,
        });
        assert!(staging.stale());
        drop(staging);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("build")]);
        assert!(out.join("new.md").exists());
    }

    fn read_all(dir: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                    out.insert(rel, fs::read_to_string(&p).unwrap());
                }
            }
        }
        out
    }

    /// A commit that keeps the previous output as the next staging directory: the next build writes only what
    /// changed, never through to the output's files, and drops what is gone; a staging dropped unfinished leaves the
    /// output as it was.
    #[test]
    fn a_mirror_is_the_next_staging_directory() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("build");
        let stage = |previous: Option<HashMap<String, u64>>,
                     mirror: Option<Mirror>,
                     files: &[(&str, &str)]| {
            let s = Staging::begin_mirrored(&out, previous, mirror).unwrap();
            for (p, b) in files {
                s.put(p.to_string(), b.as_bytes(), None);
            }
            s
        };
        let first = stage(
            None,
            None,
            &[("a/x.md", "1"), ("b.md", "b"), ("gone/c.md", "c")],
        );
        let hashes = first.hashes();
        let (done, mirror) = first.commit_mirrored(true, true).unwrap();
        assert_eq!(done.written.len(), 3);
        // The first commit has nothing to mirror (there was no previous output).
        assert!(mirror.is_none_or(|m| m.wait().is_none()));
        let second = stage(
            Some(hashes),
            None,
            &[("a/x.md", "2"), ("b.md", "b"), ("gone/c.md", "c")],
        );
        let hashes = second.hashes();
        let (done, mirror) = second.commit_mirrored(true, true).unwrap();
        assert_eq!(
            (done.written.clone(), done.linked),
            (vec!["a/x.md".to_string()], 2)
        );
        let mirror = mirror.unwrap().wait().expect("a mirror");
        let tmp = mirror.dir.clone();
        assert_eq!(read_all(&tmp), read_all(&out));

        // Staging from the mirror: the unchanged file is not touched, the changed one is written without changing
        // the output's, the one left out goes.
        let third = stage(
            Some(hashes.clone()),
            Some(mirror),
            &[("a/x.md", "3"), ("b.md", "b")],
        );
        assert!(third.mirrored);
        assert_eq!(fs::read_to_string(out.join("a/x.md")).unwrap(), "2");
        // Dropped unfinished: the output is as it was; the mirror is gone.
        drop(third);
        assert_eq!(fs::read_to_string(out.join("a/x.md")).unwrap(), "2");
        assert!(!tmp.exists());
        let third = stage(
            Some(hashes),
            None,
            &[("a/x.md", "3"), ("b.md", "b"), ("gone/c.md", "c")],
        );
        let hashes = third.hashes();
        let mirror = third
            .commit_mirrored(true, true)
            .unwrap()
            .1
            .unwrap()
            .wait()
            .unwrap();
        let fourth = stage(
            Some(hashes),
            Some(mirror),
            &[("a/x.md", "4"), ("b.md", "b")],
        );
        let (done, mirror) = fourth.commit_mirrored(true, true).unwrap();
        assert_eq!((done.written, done.linked), (vec!["a/x.md".to_string()], 1));
        let all = read_all(&out);
        assert_eq!(all.get("a/x.md").map(String::as_str), Some("4"));
        assert!(!all.contains_key("gone/c.md") && !out.join("gone").exists());
        let mirror = mirror.unwrap().wait().unwrap();
        assert_eq!(read_all(&mirror.dir), all);
        let tmp = mirror.dir.clone();
        drop(mirror);
        assert!(!tmp.exists());
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
