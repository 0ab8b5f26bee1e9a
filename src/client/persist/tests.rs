use super::log::file_name;
use super::*;
use crate::packet::{MqttStr, QoS};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("mqtt5c-persist-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Dir(p)
    }

    fn log(&self, id: &str) -> PathBuf {
        self.0.join(format!("{}.mqlog", file_name(id)))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

fn out(seq: u64, id: u16, qos: QoS) -> Outgoing {
    Outgoing {
        seq,
        id,
        qos,
        released: false,
        alias_topic: None,
        packet: record::test_publish(id, qos, format!("message {seq}").as_bytes()),
    }
}

fn open(rt: &tokio::runtime::Runtime, dir: &Dir) -> Opened {
    Store::open(&dir.0, "client/1", rt.handle().clone(), Default::default()).unwrap()
}

/// Appends `records` and waits until the last is on disk.
fn commit_all(rt: &tokio::runtime::Runtime, store: &Arc<Store>, records: Vec<Record>) {
    let last = records.into_iter().map(|r| store.append(r)).last();
    if let Some(t) = last {
        rt.block_on(store.commit(t)).unwrap();
    }
}

/// A log with three publishes (one released, one completed) and an
/// inbound QoS 2 message held; returns the state it should load.
fn sample(rt: &tokio::runtime::Runtime, dir: &Dir) -> State {
    let o = open(rt, dir);
    assert!(o.state.is_empty());
    let mut alias = out(3, 30, QoS::AtLeastOnce);
    alias.alias_topic = Some(MqttStr::new("t/x").unwrap());
    let records = vec![
        Record::Stored(out(1, 10, QoS::AtLeastOnce)),
        Record::Stored(out(2, 20, QoS::ExactlyOnce)),
        Record::Stored(alias),
        Record::Released(20),
        Record::Completed(10),
        Record::InboundHeld(7),
        Record::InboundHeld(8),
        Record::InboundReleased(8),
    ];
    let mut expected = State::default();
    for r in &records {
        expected.apply(r.clone());
    }
    commit_all(rt, &o.store, records);
    o.store.shutdown();
    expected
}

#[test]
fn the_state_survives_a_reopen() {
    let rt = runtime();
    let dir = Dir::new();
    let expected = sample(&rt, &dir);
    let o = open(&rt, &dir);
    assert_eq!(o.state, expected);
    assert!(o.torn.is_none());
    let seqs: Vec<(u64, u16, bool)> = o
        .state
        .outgoing()
        .map(|x| (x.seq, x.id, x.released))
        .collect();
    assert_eq!(seqs, vec![(2, 20, true), (3, 30, false)]);
    assert_eq!(o.state.inbound().collect::<Vec<_>>(), vec![7]);
    // Reset voids it all.
    commit_all(&rt, &o.store, vec![Record::Reset]);
    o.store.shutdown();
    assert!(open(&rt, &dir).state.is_empty());
}

#[test]
fn a_torn_last_record_is_cut_at_every_byte() {
    let rt = runtime();
    let dir = Dir::new();
    let expected = sample(&rt, &dir);
    // One more record, then cut inside it at every offset.
    let o = open(&rt, &dir);
    let before = std::fs::metadata(dir.log("client/1")).unwrap().len();
    commit_all(
        &rt,
        &o.store,
        vec![Record::Stored(out(4, 40, QoS::ExactlyOnce))],
    );
    o.store.shutdown();
    drop(o);
    let full = std::fs::read(dir.log("client/1")).unwrap();
    for cut in before as usize..full.len() {
        std::fs::write(dir.log("client/1"), &full[..cut]).unwrap();
        let o = open(&rt, &dir);
        assert_eq!(o.state, expected, "cut at {cut}");
        let torn = o.torn.clone();
        if cut == before as usize {
            assert!(torn.is_none(), "a clean end at {cut}");
        } else {
            let t = torn.unwrap_or_else(|| panic!("cut at {cut} not noticed"));
            assert_eq!((t.offset, t.discarded), (before, cut as u64 - before));
        }
        // The tail is gone from the file, and appending goes on from there.
        assert_eq!(
            std::fs::metadata(dir.log("client/1")).unwrap().len(),
            before
        );
        o.store.shutdown();
    }
}

#[test]
fn a_flipped_bit_ends_the_replay_at_its_record() {
    let rt = runtime();
    let dir = Dir::new();
    let o = open(&rt, &dir);
    let header = std::fs::metadata(dir.log("client/1")).unwrap().len() as usize;
    let first = Record::Stored(out(1, 10, QoS::AtLeastOnce));
    let mut first_len = Vec::new();
    record::encode(&first, &mut first_len);
    commit_all(
        &rt,
        &o.store,
        vec![first.clone(), Record::Stored(out(2, 11, QoS::AtLeastOnce))],
    );
    o.store.shutdown();
    drop(o);
    let good = std::fs::read(dir.log("client/1")).unwrap();
    let second = header + first_len.len();
    for at in second..good.len() {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(dir.log("client/1"), &bad).unwrap();
        let o = open(&rt, &dir);
        let ids: Vec<u16> = o.state.outgoing().map(|x| x.id).collect();
        assert_eq!(ids, vec![10], "flip at {at}");
        assert_eq!(o.torn.as_ref().map(|t| t.offset), Some(second as u64));
        o.store.shutdown();
    }
}

#[test]
fn a_foreign_or_newer_file_is_refused_not_overwritten() {
    let rt = runtime();
    let dir = Dir::new();
    drop(sample(&rt, &dir));
    let mut bytes = std::fs::read(dir.log("client/1")).unwrap();
    bytes[8] = 2; // the format version
    std::fs::write(dir.log("client/1"), &bytes).unwrap();
    let e = Store::open(&dir.0, "client/1", rt.handle().clone(), Default::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("version 2"), "{e}");
    bytes[0] = b'X';
    std::fs::write(dir.log("client/1"), &bytes).unwrap();
    let e = Store::open(&dir.0, "client/1", rt.handle().clone(), Default::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("bad header"), "{e}");
    assert_eq!(
        std::fs::read(dir.log("client/1")).unwrap(),
        bytes,
        "untouched"
    );
}

#[test]
fn one_user_of_a_directory_and_id_at_a_time() {
    let rt = runtime();
    let dir = Dir::new();
    let first = open(&rt, &dir);
    let e = Store::open(&dir.0, "client/1", rt.handle().clone(), Default::default())
        .err()
        .unwrap();
    let text = e.to_string();
    assert!(matches!(e, Error::Persistence(_)));
    assert!(text.contains(&dir.0.display().to_string()), "{text}");
    assert!(text.contains("in use"), "{text}");
    // Another id in the same directory is another log.
    let other = Store::open(&dir.0, "client/2", rt.handle().clone(), Default::default()).unwrap();
    other.store.shutdown();
    // Shut down, the lock is free again.
    first.store.shutdown();
    open(&rt, &dir).store.shutdown();
}

#[test]
fn the_log_is_compacted_to_the_live_state() {
    let rt = runtime();
    let dir = Dir::new();
    let o = open(&rt, &dir);
    let keep = Record::Stored(out(1, 1, QoS::ExactlyOnce));
    commit_all(&rt, &o.store, vec![keep, Record::Released(1)]);
    // Far more than COMPACT_MIN of publishes that complete.
    let mut seq = 1;
    while seq < 40_000 {
        let mut batch = Vec::new();
        for _ in 0..100 {
            seq += 1;
            let id = 2 + (seq % 1000) as u16;
            batch.push(Record::Stored(out(seq, id, QoS::AtLeastOnce)));
            batch.push(Record::Completed(id));
        }
        commit_all(&rt, &o.store, batch);
    }
    let len = std::fs::metadata(dir.log("client/1")).unwrap().len();
    assert!(len < COMPACT_MIN + 64 * 1024, "compacted: {len} bytes");
    o.store.shutdown();
    let o = open(&rt, &dir);
    let live: Vec<(u16, bool)> = o.state.outgoing().map(|x| (x.id, x.released)).collect();
    assert_eq!(live, vec![(1, true)]);
    assert!(!dir
        .0
        .join(format!("{}.mqlog.tmp", file_name("client/1")))
        .exists());
}

#[test]
fn concurrent_publishers_share_commits() {
    let rt = runtime();
    let dir = Dir::new();
    let o = open(&rt, &dir);
    let store = o.store.clone();
    let tasks: Vec<_> = (0..8u64)
        .map(|t| {
            let store = store.clone();
            rt.spawn(async move {
                for i in 0..200u64 {
                    let seq = t * 1000 + i + 1;
                    let id = (t * 1000 + i + 1) as u16;
                    let ticket = store.append(Record::Stored(out(seq, id, QoS::AtLeastOnce)));
                    store.commit(ticket).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    // Flat combining: publishers that append while a write is in
    // progress share the next one.
    let syncs = store.syncs();
    assert!(syncs < 1600, "{syncs} fdatasyncs for 1600 commits");
    store.shutdown();
    let o = open(&rt, &dir);
    assert_eq!(o.state.outgoing().count(), 1600);
}

#[test]
fn after_shutdown_appends_are_refused() {
    let rt = runtime();
    let dir = Dir::new();
    let o = open(&rt, &dir);
    o.store.shutdown();
    let t = o.store.append(Record::Completed(1));
    assert!(rt.block_on(o.store.commit(t)).is_err());
}

#[test]
fn a_failed_write_fails_its_commits_and_the_next_rewrites_all() {
    let rt = runtime();
    let dir = Dir::new();
    let o = open(&rt, &dir);
    commit_all(
        &rt,
        &o.store,
        vec![Record::Stored(out(1, 1, QoS::AtLeastOnce))],
    );
    o.store.break_for_test();
    let t = o.store.append(Record::Stored(out(2, 2, QoS::AtLeastOnce)));
    let e = rt.block_on(o.store.commit(t)).unwrap_err();
    assert!(matches!(e, Error::Persistence(_)), "{e}");
    assert!(e.to_string().contains("No space"), "{e}");
    // The next write replaces the log with the whole state, record 2 too.
    commit_all(
        &rt,
        &o.store,
        vec![Record::Stored(out(3, 3, QoS::AtLeastOnce))],
    );
    o.store.shutdown();
    let o = open(&rt, &dir);
    let ids: Vec<u16> = o.state.outgoing().map(|x| x.id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
}

#[test]
fn records_nobody_waits_for_need_no_sync_of_their_own() {
    let rt = runtime();
    let dir = Dir::new();
    let o = open(&rt, &dir);
    commit_all(
        &rt,
        &o.store,
        vec![Record::Stored(out(1, 1, QoS::AtLeastOnce))],
    );
    let before = o.store.syncs();
    for id in 2..50u16 {
        o.store.append(Record::Completed(id));
    }
    // Written by a job of their own, without a sync: a commit that comes
    // later syncs them with its own record.
    let t = o.store.append(Record::Stored(out(2, 2, QoS::AtLeastOnce)));
    rt.block_on(o.store.commit(t)).unwrap();
    let syncs = o.store.syncs() - before;
    assert!(syncs <= 2, "{syncs} fdatasyncs for one commit");
    // A commit of a ticket already written but not synced gets its sync.
    let t = o.store.append(Record::Completed(1));
    rt.block_on(o.store.commit(t)).unwrap();
    o.store.shutdown();
    let o = open(&rt, &dir);
    let ids: Vec<u16> = o.state.outgoing().map(|x| x.id).collect();
    assert_eq!(ids, vec![2]);
}
