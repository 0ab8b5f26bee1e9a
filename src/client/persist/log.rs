//! The log file of one client id: its name, its lock, its header,
//! recovery, appends and the snapshot that replaces it.
//!
//! Files in the directory, for a client id escaped as `NAME`:
//! - `NAME.lock`: held with `flock` while a client uses the id, so a
//!   second process (or client) with the same directory and id is refused.
//! - `NAME.mqlog`: a header, then records (see `record`), appended.
//! - `NAME.mqlog.tmp`: a snapshot being written; renamed over the log once
//!   complete and synced, so the log is always either the old or the new.
//!
//! Header: `MQTT5CPL`, format version u32, client id length u32, client
//! id, CRC-32 of all that; integers little-endian. Version 1 is this one.

use super::record::{self, Record, PREFIX};
use super::state::State;
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MQTT5CPL";
pub const VERSION: u32 = 1;

/// The longest escaped name used as is; longer ones are shortened and
/// made unique by a hash (the header's full id guards against a clash).
const NAME_MAX: usize = 160;

/// What recovery found wrong at the end of the log, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    /// Where the first bad record began: the log now ends there.
    pub offset: u64,
    /// How many bytes were discarded from there.
    pub discarded: u64,
    pub why: String,
}

/// An open, locked log.
pub struct LogFile {
    file: File,
    /// Kept open: closing it releases the lock.
    _lock: File,
    path: PathBuf,
    dir: PathBuf,
    header: Vec<u8>,
    len: u64,
}

/// `id` as a file name: ASCII letters, digits, `-` and `_` as they are,
/// every other byte `%XX`, so distinct ids give distinct names (`%`
/// itself is escaped). A name that would be too long keeps its start and
/// ends with `~` and a 64-bit hash of the id: `~` never appears in the
/// short form, and the header holds the whole id, so two ids sharing
/// such a name are told apart on open.
pub fn file_name(id: &str) -> String {
    let mut s = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    if id.is_empty() {
        // Not reachable from the client (persistence needs an id); an
        // empty name would make the files hidden and oddly named.
        s.push_str("%00");
    }
    if s.len() <= NAME_MAX {
        return s;
    }
    let mut cut = NAME_MAX - 17;
    // Not inside a %XX escape.
    while s.as_bytes()[cut - 1] == b'%' || s.as_bytes()[cut - 2] == b'%' {
        cut -= 1;
    }
    format!("{}~{:016x}", &s[..cut], fnv1a64(id.as_bytes()))
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn header(id: &str) -> Vec<u8> {
    let mut h = Vec::with_capacity(20 + id.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&(id.len() as u32).to_le_bytes());
    h.extend_from_slice(id.as_bytes());
    let crc = record::crc32(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

/// Takes the lock of `name` in `dir`, or says who has it.
fn lock(dir: &Path, name: &str) -> Result<File, String> {
    let path = dir.join(format!("{name}.lock"));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    // SAFETY: a valid open descriptor, owned by `f` for the call.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(format!(
                "the persistence directory {} is in use for this client id by another \
                 process or client (lock file {} is held)",
                dir.display(),
                path.display()
            ));
        }
        return Err(format!("cannot lock {}: {e}", path.display()));
    }
    Ok(f)
}

/// Makes sure a rename or a new file in `dir` is on disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl LogFile {
    /// Opens (creating the directory and the log if need be) and locks
    /// the log of `id` in `dir`, and replays it. A torn or corrupt record
    /// ends the replay: the log is cut there (and synced) and the
    /// returned `Torn` says what was lost. Errors are texts naming the
    /// file: locked by another, unreadable, or not our format.
    pub fn open(dir: &Path, id: &str) -> Result<(LogFile, State, Option<Torn>), String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the persistence directory {}: {e}",
                dir.display()
            )
        })?;
        let name = file_name(id);
        let lock = lock(dir, &name)?;
        let path = dir.join(format!("{name}.mqlog"));
        let header = header(id);
        let io_err = |e: io::Error| format!("{}: {e}", path.display());
        if !path.exists() {
            let file = write_whole(dir, &path, &header, &[]).map_err(io_err)?;
            let len = header.len() as u64;
            let log = LogFile::new(file, lock, &path, dir, header, len);
            return Ok((log, State::default(), None));
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        check_header(&mut file, &path, &header)?;
        let (state, end, torn) = replay(&mut file, header.len() as u64).map_err(io_err)?;
        if torn.is_some() {
            file.set_len(end).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        file.seek(SeekFrom::Start(end)).map_err(io_err)?;
        let log = LogFile::new(file, lock, &path, dir, header, end);
        Ok((log, state, torn))
    }

    fn new(file: File, lock: File, path: &Path, dir: &Path, header: Vec<u8>, len: u64) -> Self {
        LogFile {
            file,
            _lock: lock,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
            header,
            len,
        }
    }

    /// Makes the next appends fail as on a full disk (for the tests).
    #[cfg(test)]
    pub fn break_for_test(&mut self) {
        self.file = OpenOptions::new().write(true).open("/dev/full").unwrap();
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The size of the log file.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends `bytes` (whole records), and with `sync` makes them and
    /// everything written before durable (fdatasync: the data and the
    /// file size, not the access times).
    pub fn append(&mut self, bytes: &[u8], sync: bool) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.len += bytes.len() as u64;
        if sync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Replaces the log by a new one holding `records` (a snapshot): the
    /// new file is written and synced under a temporary name, renamed
    /// over the log, and the directory synced, so that after a crash at
    /// any point the log is the old one or the new one, whole.
    pub fn rewrite(&mut self, records: &[u8]) -> io::Result<()> {
        self.file = write_whole(&self.dir, &self.path, &self.header, records)?;
        self.len = (self.header.len() + records.len()) as u64;
        Ok(())
    }
}

/// Writes a log holding `header` and `records` at `path`: under a
/// temporary name first, synced, renamed over `path`, and the directory
/// synced, so that after a crash at any point the log is the old one or
/// the new one, whole. Returns the new file, positioned at its end.
fn write_whole(dir: &Path, path: &Path, header: &[u8], records: &[u8]) -> io::Result<File> {
    let tmp = path.with_extension("mqlog.tmp");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(header)?;
    f.write_all(records)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)?;
    Ok(f)
}

/// Checks that `file` begins with `want`, our header for this id.
fn check_header(file: &mut File, path: &Path, want: &[u8]) -> Result<(), String> {
    let mut got = vec![0u8; want.len()];
    let n = read_up_to(file, &mut got).map_err(|e| format!("{}: {e}", path.display()))?;
    if n >= 12 && &got[..8] == MAGIC {
        let version = u32::from_le_bytes([got[8], got[9], got[10], got[11]]);
        if version != VERSION {
            return Err(format!(
                "{}: persistence format version {version}; this library reads version {VERSION}",
                path.display()
            ));
        }
    }
    if n < want.len() || got != want {
        return Err(format!(
            "{}: not a mqtt5c persistence log for this client id (bad header); \
             move it away to start afresh",
            path.display()
        ));
    }
    Ok(())
}

/// Reads the records from `start` (after the header) into a state.
/// Returns it, where the good records end, and what was wrong after them.
fn replay(file: &mut File, start: u64) -> io::Result<(State, u64, Option<Torn>)> {
    let total = file.metadata()?.len();
    file.seek(SeekFrom::Start(start))?;
    let mut r = io::BufReader::with_capacity(1 << 16, file);
    let mut state = State::default();
    let mut at = start;
    loop {
        let mut prefix = [0u8; PREFIX];
        let n = read_up_to(&mut r, &mut prefix)?;
        if n == 0 {
            return Ok((state, at, None));
        }
        let why = match read_record(&mut r, n, &prefix)? {
            Ok((rec, len)) => {
                state.apply(rec);
                at += (PREFIX + len) as u64;
                continue;
            }
            Err(why) => why,
        };
        let torn = Torn {
            offset: at,
            discarded: total - at,
            why,
        };
        return Ok((state, at, Some(torn)));
    }
}

/// Reads the rest of a record whose prefix read gave `n` bytes: the
/// record and its length, or why it is torn or corrupt.
fn read_record(
    r: &mut impl Read,
    n: usize,
    prefix: &[u8; PREFIX],
) -> io::Result<Result<(Record, usize), String>> {
    if n < PREFIX {
        return Ok(Err(format!("torn record prefix ({n} of {PREFIX} bytes)")));
    }
    let len = match record::length(prefix) {
        Ok(len) => len,
        Err(why) => return Ok(Err(why)),
    };
    // Read in steps: a corrupt length must not allocate what it claims
    // before the bytes are there.
    let mut rest = Vec::with_capacity(len.min(1 << 20));
    let got = r.by_ref().take(len as u64).read_to_end(&mut rest)?;
    if got < len {
        return Ok(Err(format!("torn record ({got} of {len} bytes)")));
    }
    Ok(record::decode(prefix, Bytes::from(rest)).map(|rec| (rec, len)))
}

/// Reads until `buf` is full or the end; returns how much was read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_injective_and_plain() {
        assert_eq!(file_name("sensor-1_a"), "sensor-1_a");
        assert_eq!(file_name("a/b"), "a%2Fb");
        assert_eq!(file_name("a%2Fb"), "a%252Fb");
        assert_eq!(file_name("a.b"), "a%2Eb");
        assert_eq!(file_name(".."), "%2E%2E");
        assert_eq!(file_name("é"), "%C3%A9");
        let long_a = "a".repeat(300);
        let long_b = format!("{}b", "a".repeat(299));
        let (na, nb) = (file_name(&long_a), file_name(&long_b));
        assert_ne!(na, nb);
        assert!(na.len() <= NAME_MAX && na.contains('~'), "{na}");
        // Cut outside an escape.
        let n = file_name(&"/".repeat(100));
        let stem = n.split('~').next().unwrap();
        assert!(stem.len() % 3 == 0 && stem.chars().all(|c| "%2F".contains(c)));
    }
}
