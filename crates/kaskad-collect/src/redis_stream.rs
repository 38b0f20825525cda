//! A Redis stream as a source: one stream entry is one application (its
//! fields are the columns), `batch_rows` entries make a batch.
//!
//! Entries are read through a consumer group, so Redis itself keeps the
//! position in the stream, and an entry is acknowledged (`XACK`) only after
//! the batch holding it is stored. Until then it stays pending and is read
//! again by the next run: a process killed between reading and storing loses
//! nothing, and one killed between storing and acknowledging gets the same
//! batch again, which the catalog refuses by content hash and acknowledges.
//! Only full batches are offered; the entries of an incomplete tail stay
//! pending until enough have arrived. An entry that cannot be read (a word
//! in a numeric field, a field earlier batches did not have) is copied with
//! an `error` field to the dead-letter stream `<stream>:rejected` and
//! acknowledged, and the entries after it complete its batch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kaskad_core::{ColumnKind, CoreError, Frame};
use redis::Value;

use crate::CollectError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_GROUP: &str = "kaskad";
/// One consumer per group: batches are formed in stream order by one reader.
const CONSUMER: &str = "kaskad";
/// Entries fetched per round trip.
const READ_COUNT: usize = 10_000;

/// Where a stream lives: `redis://host:port[/db]?stream=NAME[&group=NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisStream {
    /// The location as configured, for messages.
    pub location: String,
    /// The server address without kaskad's own query parameters.
    server: String,
    pub stream: String,
    pub group: String,
}

/// One stream entry: its id and its fields in the order they were added.
/// A deleted entry that was still pending has no fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub id: String,
    pub fields: Option<Vec<(String, String)>>,
}

impl RedisStream {
    /// Parses a `redis://` or `rediss://` location; `None` when `location`
    /// is not one.
    pub fn parse(location: &str) -> Option<Result<RedisStream, CollectError>> {
        if !(location.starts_with("redis://") || location.starts_with("rediss://")) {
            return None;
        }
        let bad = |message: &str| CollectError::RedisLocation {
            location: location.to_string(),
            message: message.to_string(),
        };
        let (server, query) = location.split_once('?').unwrap_or((location, ""));
        let (mut stream, mut group, mut kept) = (None, None, Vec::new());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("stream", v)) if !v.is_empty() => stream = Some(v.to_string()),
                Some(("group", v)) if !v.is_empty() => group = Some(v.to_string()),
                _ => kept.push(pair),
            }
        }
        let Some(stream) = stream else {
            return Some(Err(bad("name the stream with `?stream=NAME`")));
        };
        let server = if kept.is_empty() {
            server.to_string()
        } else {
            format!("{server}?{}", kept.join("&"))
        };
        Some(Ok(RedisStream {
            location: location.to_string(),
            server,
            stream,
            group: group.unwrap_or_else(|| DEFAULT_GROUP.to_string()),
        }))
    }

    /// The location as a path, the way errors of file sources name theirs.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(&self.location)
    }

    fn connect(&self) -> Result<redis::Connection, CollectError> {
        redis::Client::open(self.server.as_str())
            .and_then(|c| c.get_connection_with_timeout(CONNECT_TIMEOUT))
            .map_err(|e| self.error(e))
    }

    fn error(&self, e: redis::RedisError) -> CollectError {
        CollectError::Redis {
            location: self.location.clone(),
            message: e.to_string(),
        }
    }

    /// Entries this consumer holds but has not acknowledged, then new ones,
    /// in stream order. Creates the group (reading from the stream's start)
    /// on first use.
    pub(crate) fn read(&self) -> Result<Vec<Entry>, CollectError> {
        let mut con = self.connect()?;
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query(&mut con);
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            return Err(self.error(e));
        }
        let mut entries = Vec::new();
        // Pending entries first: "0" then the last id seen walks the list.
        let mut after = "0".to_string();
        loop {
            let page = self.read_group(&mut con, &after)?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            entries.extend(page);
        }
        loop {
            let page = self.read_group(&mut con, ">")?;
            if page.is_empty() {
                break;
            }
            entries.extend(page);
        }
        Ok(entries)
    }

    fn read_group(
        &self,
        con: &mut redis::Connection,
        id: &str,
    ) -> Result<Vec<Entry>, CollectError> {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(CONSUMER)
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(id)
            .query(con)
            .map_err(|e| self.error(e))?;
        parse_read_reply(reply).map_err(|message| CollectError::Redis {
            location: self.location.clone(),
            message,
        })
    }

    /// The first `limit` entries of the stream, without reading them as the
    /// group: what `init` checks before a home is built on the stream.
    pub(crate) fn peek(&self, limit: usize) -> Result<Vec<Entry>, CollectError> {
        let mut con = self.connect()?;
        let reply: Value = redis::cmd("XRANGE")
            .arg(&self.stream)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query(&mut con)
            .map_err(|e| self.error(e))?;
        parse_entries(reply).map_err(|message| CollectError::Redis {
            location: self.location.clone(),
            message,
        })
    }

    /// Acknowledges entries whose batch is stored.
    pub(crate) fn acknowledge(&self, ids: &[String]) -> Result<(), CollectError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.xack(&mut self.connect()?, ids)
    }

    fn xack(&self, con: &mut redis::Connection, ids: &[String]) -> Result<(), CollectError> {
        redis::cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(ids)
            .query::<i64>(con)
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// The stream rejected entries are copied to.
    pub fn dead_letter_stream(&self) -> String {
        format!("{}:rejected", self.stream)
    }

    /// Copies a rejected entry with its fields and an `error` field to the
    /// dead-letter stream, under its own id, then acknowledges it. Entries
    /// are dead-lettered in stream order, so when Redis refuses the id as
    /// not above the dead-letter stream's last one, this entry was copied
    /// by a run killed before acknowledging it: it is not copied twice.
    pub(crate) fn dead_letter(&self, entry: &Entry, error: &str) -> Result<(), CollectError> {
        let mut con = self.connect()?;
        let mut add = redis::cmd("XADD");
        add.arg(self.dead_letter_stream()).arg(&entry.id);
        for (name, value) in entry.fields.iter().flatten() {
            add.arg(name).arg(value);
        }
        add.arg("error").arg(error);
        match add.query::<String>(&mut con) {
            Ok(_) => {}
            Err(e) if e.detail().is_some_and(|d| d.contains("equal or smaller")) => {}
            Err(e) => return Err(self.error(e)),
        }
        self.xack(&mut con, std::slice::from_ref(&entry.id))
    }
}

/// `XREADGROUP`'s reply: nil, or `[[stream, [entry, ...]]]` (RESP2) or a
/// map from stream to entries (RESP3).
fn parse_read_reply(reply: Value) -> Result<Vec<Entry>, String> {
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Array(streams) => match streams.into_iter().next() {
            None => Ok(Vec::new()),
            Some(Value::Array(pair)) => match pair.into_iter().nth(1) {
                Some(entries) => parse_entries(entries),
                None => Err("XREADGROUP reply without entries".into()),
            },
            Some(other) => Err(format!("unexpected XREADGROUP reply {other:?}")),
        },
        Value::Map(streams) => match streams.into_iter().next() {
            Some((_, entries)) => parse_entries(entries),
            None => Ok(Vec::new()),
        },
        other => Err(format!("unexpected XREADGROUP reply {other:?}")),
    }
}

/// `[[id, [field, value, ...] | nil], ...]`, keeping the fields' order.
fn parse_entries(value: Value) -> Result<Vec<Entry>, String> {
    let Value::Array(items) = value else {
        return Err(format!("expected a list of entries, got {value:?}"));
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Array(parts) = item else {
                return Err(format!("expected an entry, got {item:?}"));
            };
            let mut parts = parts.into_iter();
            let id = text(parts.next().unwrap_or(Value::Nil), "entry id")?;
            let fields = match parts.next() {
                None | Some(Value::Nil) => None,
                Some(Value::Array(flat)) => {
                    if flat.len() % 2 != 0 {
                        return Err(format!("entry {id}: odd number of field names and values"));
                    }
                    let mut flat = flat.into_iter();
                    let mut fields = Vec::new();
                    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                        let name = text(name, &format!("entry {id}: field name"))?;
                        let value = text(value, &format!("entry {id}: field `{name}`"))?;
                        fields.push((name, value));
                    }
                    Some(fields)
                }
                Some(Value::Map(pairs)) => Some(
                    pairs
                        .into_iter()
                        .map(|(n, v)| {
                            let name = text(n, &format!("entry {id}: field name"))?;
                            let value = text(v, &format!("entry {id}: field `{name}`"))?;
                            Ok((name, value))
                        })
                        .collect::<Result<_, String>>()?,
                ),
                Some(other) => return Err(format!("entry {id}: unexpected fields {other:?}")),
            };
            Ok(Entry { id, fields })
        })
        .collect()
}

fn text(value: Value, what: &str) -> Result<String, String> {
    match value {
        Value::BulkString(bytes) => {
            String::from_utf8(bytes).map_err(|_| format!("{what} is not valid UTF-8"))
        }
        Value::SimpleString(s) => Ok(s),
        Value::Int(i) => Ok(i.to_string()),
        Value::Double(d) => Ok(d.to_string()),
        other => Err(format!("{what}: unexpected {other:?}")),
    }
}

/// The entries of one batch as a frame, read the way a CSV file is read (the
/// same kinds, missing markers and refusals), with errors naming the entry
/// instead of a line. A field an entry lacks is a missing value.
pub(crate) fn entries_to_frame(
    entries: &[Entry],
    path: &Path,
    schema: Option<&[(String, ColumnKind)]>,
) -> Result<Frame, CollectError> {
    let mut columns: Vec<String> = schema
        .map(|s| s.iter().map(|(n, _)| n.clone()).collect())
        .unwrap_or_default();
    let mut index: HashMap<String, usize> = columns
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    for entry in entries {
        for (name, _) in entry.fields.iter().flatten() {
            if !index.contains_key(name) {
                index.insert(name.clone(), columns.len());
                columns.push(name.clone());
            }
        }
    }
    let mut csv = csv::Writer::from_writer(Vec::new());
    let csv_error = |e: csv::Error| CollectError::Redis {
        location: path.display().to_string(),
        message: e.to_string(),
    };
    csv.write_record(&columns).map_err(csv_error)?;
    // The line each entry starts on, to name entries in errors.
    let mut first_lines = Vec::with_capacity(entries.len());
    let mut line = 2u64;
    for entry in entries {
        let mut row = vec![""; columns.len()];
        for (name, value) in entry.fields.iter().flatten() {
            row[index[name]] = value;
        }
        csv.write_record(&row).map_err(csv_error)?;
        first_lines.push((line, entry.id.as_str()));
        line += 1 + row
            .iter()
            .map(|v| v.matches('\n').count() as u64)
            .sum::<u64>();
    }
    let bytes = csv.into_inner().map_err(|e| CollectError::Redis {
        location: path.display().to_string(),
        message: e.to_string(),
    })?;
    kaskad_core::read_csv_reader(bytes.as_slice(), path, schema).map_err(|e| match e {
        CoreError::Csv {
            path,
            line,
            message,
        } => {
            let entry = first_lines
                .iter()
                .rev()
                .find(|(start, _)| *start <= line)
                .map_or("header", |(_, id)| id);
            CollectError::StreamEntry {
                path,
                entry: entry.to_string(),
                message,
            }
        }
        other => other.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, fields: &[(&str, &str)]) -> Entry {
        Entry {
            id: id.into(),
            fields: Some(
                fields
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    #[test]
    fn locations_name_the_stream_and_keep_other_parameters() {
        let s = RedisStream::parse("redis://127.0.0.1:6380/2?stream=apps&protocol=resp3")
            .unwrap()
            .unwrap();
        assert_eq!(s.stream, "apps");
        assert_eq!(s.group, "kaskad");
        assert_eq!(s.server, "redis://127.0.0.1:6380/2?protocol=resp3");
        let err = RedisStream::parse("redis://127.0.0.1/0")
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("?stream=NAME"), "{err}");
        assert!(RedisStream::parse("data/credit.csv").is_none());
    }

    #[test]
    fn entries_become_columns_in_field_order_and_absent_fields_are_missing() {
        let entries = [
            entry("1-0", &[("income", "10"), ("home", "RENT")]),
            entry("2-0", &[("home", "OWN"), ("extra", "x")]),
        ];
        let frame = entries_to_frame(&entries, Path::new("redis://h?stream=s"), None).unwrap();
        assert_eq!(frame.names(), ["income", "home", "extra"]);
        let income = frame.column("income").unwrap().as_numeric().unwrap();
        assert_eq!(income[0], 10.0);
        assert!(income[1].is_nan());
    }

    #[test]
    fn a_bad_value_names_its_entry() {
        let schema = vec![
            ("income".to_string(), ColumnKind::Numeric),
            ("note".to_string(), ColumnKind::Categorical),
        ];
        let entries = [
            entry("1-0", &[("income", "10"), ("note", "a")]),
            entry("2-0", &[("income", "12"), ("note", "two\nlines")]),
            entry("3-0", &[("income", "lots"), ("note", "c")]),
        ];
        let err = entries_to_frame(&entries, Path::new("redis://h?stream=s"), Some(&schema))
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry 3-0"), "{err}");
    }

    #[test]
    fn replies_keep_field_order_and_deleted_entries() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("b"), bulk("1"), bulk("a"), bulk("2")]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        assert_eq!(entries[0], entry("1-0", &[("b", "1"), ("a", "2")]));
        assert_eq!(entries[1].fields, None);
    }
}
