//! A Redis stream as the source, against a real `redis-server` started on
//! 127.0.0.1 for the test (`.ci/run` installs it).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{data, init, kaskad, last_line, stderr, stdout};

/// A throwaway `redis-server` without persistence, stopped on drop.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs (apt install redis-server; .ci/run installs it)");
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while redis.connection().is_none() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    fn url(&self, stream: &str) -> String {
        format!("redis://127.0.0.1:{}/0?stream={stream}", self.port)
    }

    fn connection(&self) -> Option<redis::Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/0", self.port)).ok()?;
        let mut con = client.get_connection().ok()?;
        redis::cmd("PING").query::<String>(&mut con).ok()?;
        Some(con)
    }

    fn query<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        cmd.query(&mut self.connection().unwrap()).unwrap()
    }

    /// Adds CSV rows as entries, one field per column; returns their ids.
    fn add_rows(&self, stream: &str, header: &[&str], rows: &[Vec<String>]) -> Vec<String> {
        let mut con = self.connection().unwrap();
        rows.iter()
            .map(|row| {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(stream).arg("*");
                for (name, value) in header.iter().zip(row) {
                    cmd.arg(*name).arg(value);
                }
                cmd.query::<String>(&mut con).unwrap()
            })
            .collect()
    }

    /// Delivers every entry of `stream` to kaskad's group again, as after
    /// a crash between storing a batch and acknowledging it.
    fn redeliver_all(&self, stream: &str) {
        let _: String = self.query(
            redis::cmd("XGROUP")
                .arg("SETID")
                .arg(stream)
                .arg("kaskad")
                .arg("0"),
        );
    }

    fn pending(&self, stream: &str) -> i64 {
        let summary: redis::Value = self.query(redis::cmd("XPENDING").arg(stream).arg("kaskad"));
        match summary {
            redis::Value::Array(parts) => match &parts[0] {
                redis::Value::Int(n) => *n,
                other => panic!("XPENDING count {other:?}"),
            },
            other => panic!("XPENDING reply {other:?}"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn credit_rows() -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(data("credit_data.csv")).unwrap();
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

fn batches(home: &Path) -> Vec<serde_json::Value> {
    let out = kaskad(&["batches", "--home", home.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn update(home: &Path) -> std::process::Output {
    kaskad(&["update", "--home", home.to_str().unwrap(), "--all"])
}

#[test]
fn a_redis_stream_is_collected_in_full_batches_acknowledged_once_stored() {
    let redis = Redis::start();
    let (header, rows) = credit_rows();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    redis.add_rows("apps", &header, &rows[..1500]);

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(
        &home,
        Path::new(&redis.url("apps")),
        &["--batch-rows", "500"],
    );
    // init only looks: no group reads the stream yet.
    let groups: Vec<redis::Value> = redis.query(redis::cmd("XINFO").arg("GROUPS").arg("apps"));
    assert!(groups.is_empty());

    let out = update(&home);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(last_line(&out), "true", "{}", stdout(&out));
    let stored = batches(&home);
    assert_eq!(stored.len(), 3);
    assert!(
        stored
            .iter()
            .all(|b| b["rows"] == 500 && b["processed"] == true)
    );
    assert_eq!(redis.pending("apps"), 0, "stored batches are acknowledged");

    // 700 more: one full batch now; 200 wait, pending, for the next ones.
    let added = redis.add_rows("apps", &header, &rows[1500..2200]);
    let out = update(&home);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(batches(&home).len(), 4);
    assert_eq!(redis.pending("apps"), 200);
    let out = update(&home);
    assert!(stdout(&out).contains("nothing pending") || stderr(&out).contains("nothing pending"));
    redis.add_rows("apps", &header, &rows[2200..2500]);
    let out = update(&home);
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = batches(&home);
    assert_eq!(stored.len(), 5);
    let origin = stored[4]["origin"].as_str().unwrap();
    assert!(
        origin.starts_with(&format!("stream apps entries {}", added[500])),
        "the waiting entries come first: {origin}"
    );
    assert_eq!(redis.pending("apps"), 0);

    // Every entry delivered again (as after a crash between storing and
    // acknowledging): the catalog refuses the copies, nothing is duplicated.
    redis.redeliver_all("apps");
    let out = update(&home);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(batches(&home).len(), 5);
    assert_eq!(redis.pending("apps"), 0, "refused copies are acknowledged");
}

/// The dead-letter stream's entries: id and fields in order.
fn dead_letters(redis: &Redis, stream: &str) -> Vec<(String, Vec<(String, String)>)> {
    redis.query(
        redis::cmd("XRANGE")
            .arg(format!("{stream}:rejected"))
            .arg("-")
            .arg("+"),
    )
}

#[test]
fn a_bad_entry_is_dead_lettered_with_its_error_and_the_stream_goes_on() {
    let redis = Redis::start();
    let (header, rows) = credit_rows();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    redis.add_rows("apps", &header, &rows[..400]);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    init(
        &home,
        Path::new(&redis.url("apps")),
        &["--batch-rows", "200"],
    );
    let out = update(&home);
    assert!(out.status.success(), "{}", stderr(&out));

    let mut bad = rows[400].clone();
    let income = header.iter().position(|h| *h == "Income").unwrap();
    bad[income] = "lots".into();
    let bad_id = redis.add_rows("apps", &header, &[bad.clone()]).remove(0);
    redis.add_rows("apps", &header, &rows[401..601]);
    let out = update(&home);
    let message = stderr(&out);
    assert!(out.status.success(), "{message}");
    assert!(
        message.contains(&format!("rejected stream apps entry {bad_id}"))
            && message.contains("lots"),
        "{message}"
    );
    // The entries after the bad one complete its batch.
    let stored = batches(&home);
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|b| b["processed"] == true));
    assert_eq!(
        redis.pending("apps"),
        0,
        "the bad entry is acknowledged too"
    );

    let letters = dead_letters(&redis, "apps");
    assert_eq!(letters.len(), 1);
    let (id, fields) = &letters[0];
    assert_eq!(id, &bad_id, "a dead letter keeps its entry's id");
    let expected: Vec<(String, String)> = header.iter().map(|h| h.to_string()).zip(bad).collect();
    assert_eq!(fields[..header.len()], expected[..], "every field is kept");
    let (name, error) = &fields[header.len()];
    assert_eq!(name, "error");
    assert!(error.contains(&format!("entry {bad_id}")), "{error}");

    // Nothing is lost: stored rows and dead letters add up to the entries.
    let rows_stored: u64 = stored.iter().map(|b| b["rows"].as_u64().unwrap()).sum();
    let pushed: u64 = redis.query(redis::cmd("XLEN").arg("apps"));
    assert_eq!(rows_stored + letters.len() as u64, pushed);
    let out = kaskad(&[
        "batches",
        "--home",
        home.to_str().unwrap(),
        "--rejected",
        "--json",
    ]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["origin"], format!("stream apps entry {bad_id}"));

    // Every entry delivered again (as after a crash before acknowledging):
    // the dead letter is not copied twice nor recorded twice.
    redis.redeliver_all("apps");
    let out = update(&home);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(batches(&home).len(), 3);
    assert_eq!(dead_letters(&redis, "apps").len(), 1);
    assert_eq!(redis.pending("apps"), 0);

    // A bad entry is found once its batch is full. Here the 199 good
    // entries after it wait for one more, so the update found nothing but
    // rejected input: it fails and names the entry.
    let mut bad = rows[601].clone();
    bad[income] = "many".into();
    let second = redis.add_rows("apps", &header, &[bad]).remove(0);
    redis.add_rows("apps", &header, &rows[602..801]);
    let out = update(&home);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "error: no new batch; rejected stream apps entry {second}"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(dead_letters(&redis, "apps").len(), 2);
    assert_eq!(redis.pending("apps"), 199);
}

#[test]
fn a_stream_location_without_a_stream_name_is_refused_at_init() {
    let dir = tempfile::tempdir().unwrap();
    let out = kaskad(&[
        "init",
        "--home",
        dir.path().join("h").to_str().unwrap(),
        "--dataset",
        "redis://127.0.0.1:1/0",
        "--target",
        "Status",
        "--positive",
        "bad",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("?stream=NAME"), "{}", stderr(&out));
}
