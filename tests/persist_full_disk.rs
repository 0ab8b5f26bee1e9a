//! Persistence on a disk that fills up and then has room again (issue 9):
//! the file-size limit of this process (RLIMIT_FSIZE, set with SIGXFSZ
//! ignored, so a write past it fails with EFBIG as a full disk fails with
//! ENOSPC) makes the log's writes fail for real. One test in this file:
//! the limit is the whole process's.
//!
//! What the README promises: the publishes waiting for a failed write
//! return the persistence error; the next write rewrites the whole state,
//! so persistence recovers when there is room again. Checked by what a
//! crash would leave: a copy of the log, taken after the recovery, loaded
//! by a new client, resends every publish that returned Ok.

mod common;

use common::events::client;
use common::proxy::Proxy;
use common::{Broker, TempDir};
use mqtt5c::client::{ClientOptions, Error, MqttClient};
use mqtt5c::packet::{MqttStr, Properties, QoS, ReasonCode, SubscribeFilter, SubscriptionOptions};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn opts(id: &str, dir: Option<&Path>) -> ClientOptions {
    ClientOptions {
        client_id: MqttStr::new(id).unwrap(),
        clean_start: false,
        session_expiry: 600,
        persistence_dir: dir.map(Path::to_path_buf),
        ..Default::default()
    }
}

/// Sets this process's file-size limit (soft; the hard one stays).
fn file_size_limit(bytes: Option<u64>) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.map_or(lim.rlim_max, |b| b as libc::rlim_t);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// Publishes `n` QoS 1 messages numbered from `first` without waiting for
/// their acknowledgement; returns the numbers whose publish returned Ok
/// and the errors of the others.
async fn batch(c: &MqttClient, first: u32, n: u32) -> (Vec<u32>, Vec<Error>) {
    let (mut ok, mut failed) = (Vec::new(), Vec::new());
    for i in first..first + n {
        let mut payload = i.to_be_bytes().to_vec();
        payload.resize(1024, 0);
        match c
            .publish_then(
                "full/t",
                &payload,
                QoS::AtLeastOnce,
                false,
                Properties::new(),
                None,
            )
            .await
        {
            Ok(()) => ok.push(i),
            Err(e) => failed.push(e),
        }
    }
    (ok, failed)
}

/// A copy of the log as it is on disk now, in a directory of its own,
/// for a client to load as the next process would after a crash.
fn crash_image(log: &Path, dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir(dir).unwrap();
    std::fs::copy(log, dir.join(log.file_name().unwrap())).unwrap();
    dir.to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_publishes_it_hits_and_persistence_recovers() {
    // SAFETY: ignoring a signal; nothing else in this process handles it.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let broker = Broker::start();
    let proxy = Proxy::start(broker.port());
    let dir = TempDir::new("mqtt5c-fulldisk").unwrap();
    let live = dir.path().join("live");
    let (p, _prx) = client(opts("full-pub", Some(&live)));
    p.connect(&proxy.url()).await.unwrap();
    // Nothing reaches the broker: every message stays unacknowledged, in
    // the log (15 in all: below mosquitto's Receive Maximum of 20, so no
    // publish waits for a slot).
    proxy.swallow_upstream();

    let (mut accepted, failed) = batch(&p, 0, 5).await;
    assert!(failed.is_empty(), "{failed:?}");
    let log = live.join("full-pub.mqlog");
    let len = std::fs::metadata(&log).unwrap().len();
    file_size_limit(Some(len + 100));
    let (ok, failed) = batch(&p, 100, 5).await;
    // What a crash while the disk is full would leave: a record cut short
    // at the end of the log (read now, written once there is room).
    let full_log = std::fs::read(&log).unwrap();
    // Nothing is published now: the store has no reason to write. It
    // used to retry the failed write at once, for as long as the disk was
    // full, rewriting the whole state in a loop. The snapshot file it
    // writes shows each attempt; half a second is plenty for a loop to
    // show (it made thousands of attempts a second).
    let tmp = live.join("full-pub.mqlog.tmp");
    let attempts = || std::fs::metadata(&tmp).and_then(|m| m.modified()).ok();
    let before = attempts();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = attempts();
    // Room again before anything can fail: a looping store would loop on.
    file_size_limit(None);
    assert_eq!(
        after, before,
        "the store keeps rewriting its state while nothing is published"
    );
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("full-pub.mqlog"), full_log).unwrap();
    assert!(
        !failed.is_empty() && failed.iter().all(|e| matches!(e, Error::Persistence(_))),
        "the full disk fails the publishes with the persistence error: {failed:?}"
    );
    let before_full = accepted.clone();
    accepted.extend(ok);
    let (ok, failed) = batch(&p, 200, 5).await;
    assert!(
        failed.is_empty(),
        "recovered once there is room: {failed:?}"
    );
    accepted.extend(ok);
    // What a crash now would leave.
    let recovered = crash_image(&log, &dir.path().join("recovered"));

    let (s, srx) = client(opts("full-sub", None));
    s.connect(&broker.url()).await.unwrap();
    let filter = vec![SubscribeFilter {
        filter: MqttStr::new("full/#").unwrap(),
        options: SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    }];
    s.subscribe(filter, Properties::new()).await.unwrap();
    p.close();
    // The next process, after each crash.
    for (image, want) in [(full, before_full), (recovered, accepted)] {
        let (next, _nrx) = client(opts("full-pub", Some(&image)));
        next.connect(&broker.url()).await.unwrap();
        let want: BTreeSet<u32> = want.into_iter().collect();
        let mut got = BTreeSet::new();
        let deadline = Instant::now() + WAIT;
        while !want.is_subset(&got) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(m) = srx.msg_within(left) else {
                let missing: Vec<_> = want.difference(&got).collect();
                panic!(
                    "{}: accepted and never resent by the next process: {missing:?}",
                    image.display()
                );
            };
            got.insert(u32::from_be_bytes(m.payload[..4].try_into().unwrap()));
        }
        println!("{}: {} accepted, all resent", image.display(), want.len());
        next.disconnect(ReasonCode::Success, Properties::new())
            .await
            .unwrap();
        next.close();
    }
    s.disconnect(ReasonCode::Success, Properties::new())
        .await
        .unwrap();
    s.close();
}
