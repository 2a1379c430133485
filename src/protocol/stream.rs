//! A push frame read a slice at a time.
//!
//! Why: a fabric can push one frame with tens of thousands of objects (a subscription to a busy
//! class after a reload, say). Read and delivered in one go, that is one main-thread task of
//! hundreds of milliseconds in a browser: the page freezes. [`NotificationReader`] lets the
//! engine take such a frame apart in slices of a bounded number of objects, so the shell can
//! yield to the event loop between them.
//!
//! How: a large JSON frame is not parsed up front. A cheap scanner (strings and brackets only)
//! walks the envelope to `subscriptionId` and `imdata`, and then finds one array element at a
//! time; each element is read by the same entry reader as a whole document, so a sliced frame
//! yields exactly the objects an unsliced one would. The scan itself is incremental too: a slice
//! costs in proportion to the objects it returns, never to the size of the frame. Small frames,
//! and XML (which fabrics send in small frames), are read whole and then handed out in slices.
//!
//! What differs from reading the frame whole (only for frames above [`STREAM_BYTES`]): a syntax
//! error inside one entry rejects that entry (an [`EntryError`]) instead of the frame, and a
//! broken end of the frame (a missing bracket, trailing bytes) is found after the entries before
//! it were handed out; it is then reported as a [`MalformedError`] with the last slice.

use super::doc::{finish, EntryError, MissingStatus};
use super::error::MalformedError;
use super::json;
use super::mo::Mo;
use super::response::{parse_notification, Notification};

/// Frames up to this size are parsed whole when opened: reading them takes a few milliseconds at
/// most, and the whole-document reader is the strictest.
pub const STREAM_BYTES: usize = 256 * 1024;

const WHAT: &str = "notification";

/// One slice of a frame.
#[derive(Debug, Default)]
pub struct Slice {
    /// The objects of this slice, in frame order.
    pub mos: Vec<Mo>,
    /// Entries of this slice that could not be read (indexes count from the frame's start).
    pub rejected: Vec<EntryError>,
    /// The rest of the frame turned out to be unreadable; nothing follows this slice.
    pub error: Option<MalformedError>,
}

enum Source {
    /// Read whole; handed out from `next`.
    Parsed(std::vec::IntoIter<Mo>),
    /// Scanned lazily.
    Json(Scanner),
}

/// A notification being read in slices. Opening reads the envelope (the subscription ids); each
/// [`NotificationReader::next_slice`] returns up to `max` objects.
pub struct NotificationReader {
    ids: Vec<String>,
    source: Source,
    /// Rejected entries of a frame read whole, handed out with its first slice.
    rejected: Vec<EntryError>,
    done: bool,
}

impl NotificationReader {
    /// Opens a frame: large JSON frames are scanned lazily (the text is copied once), anything
    /// else is parsed whole here. Fails as [`parse_notification`] does when the envelope is
    /// unreadable.
    pub fn open(frame: &str) -> Result<NotificationReader, MalformedError> {
        if Self::streams(frame) {
            Self::open_owned(frame.to_owned())
        } else {
            parse_notification(frame).map(NotificationReader::from_parsed)
        }
    }

    /// Whether [`NotificationReader::open`] would read this frame lazily.
    pub fn streams(frame: &str) -> bool {
        frame.len() > STREAM_BYTES && frame.trim_start().as_bytes().first() == Some(&b'{')
    }

    /// As [`NotificationReader::open`], keeping the text it is given (no copy of a large frame).
    pub fn open_owned(frame: String) -> Result<NotificationReader, MalformedError> {
        if !Self::streams(&frame) {
            return parse_notification(&frame).map(NotificationReader::from_parsed);
        }
        let (scanner, ids) = Scanner::open(frame)?;
        Ok(NotificationReader {
            ids,
            source: Source::Json(scanner),
            rejected: Vec::new(),
            done: false,
        })
    }

    /// A frame already read whole, to hand out in slices.
    pub fn from_parsed(n: Notification) -> NotificationReader {
        NotificationReader {
            ids: n.subscription_ids,
            done: n.mos.is_empty() && n.rejected.is_empty(),
            source: Source::Parsed(n.mos.into_iter()),
            rejected: n.rejected,
        }
    }

    /// Every subscription the frame is for.
    pub fn subscription_ids(&self) -> &[String] {
        &self.ids
    }

    /// Whether every entry has been handed out.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether the frame is read lazily (large JSON) rather than parsed whole.
    pub fn is_streaming(&self) -> bool {
        matches!(self.source, Source::Json(_))
    }

    /// The next objects, at most `max` of them (and at least one entry read, when any is left).
    pub fn next_slice(&mut self, max: usize) -> Slice {
        let max = max.max(1);
        let mut slice = Slice {
            rejected: std::mem::take(&mut self.rejected),
            ..Slice::default()
        };
        if self.done {
            return slice;
        }
        match &mut self.source {
            Source::Parsed(mos) => {
                slice.mos = mos.by_ref().take(max).collect();
                self.done = mos.len() == 0;
            }
            Source::Json(sc) => {
                let mut raw = Vec::new();
                let first_index = sc.index;
                while raw.len() < max {
                    match sc.next_entry() {
                        Ok(Some(entry)) => {
                            let items = json::read_entry(entry);
                            sc.index += items.len();
                            raw.extend(items);
                        }
                        Ok(None) => {
                            self.done = true;
                            break;
                        }
                        Err(detail) => {
                            slice.error = Some(MalformedError::new(WHAT, detail));
                            self.done = true;
                            break;
                        }
                    }
                }
                let (mos, mut rejected) = finish(raw, MissingStatus::Modified);
                for r in &mut rejected {
                    r.index += first_index;
                }
                slice.mos = mos;
                slice.rejected.extend(rejected);
                if self.done {
                    self.source = Source::Parsed(Vec::new().into_iter());
                }
            }
        }
        slice
    }
}

/// Where the scanner stands in the document.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum At {
    /// Before the first element of an `imdata` array (the `[` is consumed).
    ArrayStart,
    /// After an element: a `,` or the `]` comes next.
    ArrayNext,
    /// After a member of the top-level object: a `,` or the `}` comes next.
    Members,
    End,
}

/// The lazy reader of a large JSON frame: it knows strings and brackets, nothing else. What it
/// returns is checked by the entry reader.
struct Scanner {
    text: String,
    pos: usize,
    at: At,
    /// Entries read so far (flattened, as [`finish`] counts them).
    index: usize,
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `i` is at a `"`; returns the index after the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Result<usize, String> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'"' => return Ok(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    Err(format!("invalid JSON (unterminated string at byte {i})"))
}

/// `i` is at the first byte of a value; returns the index after it.
fn skip_value(b: &[u8], i: usize) -> Result<usize, String> {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            Err(format!("invalid JSON (unterminated value from byte {i})"))
        }
        Some(_) => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            if j == i {
                Err(format!("invalid JSON (expected a value at byte {i})"))
            } else {
                Ok(j)
            }
        }
        None => Err("invalid JSON (EOF while parsing a value)".to_owned()),
    }
}

fn expected(what: &str, i: usize) -> String {
    format!("invalid JSON (expected {what} at byte {i})")
}

/// A key (the text between `start` and `end`, quotes included), unescaped when it needs to be.
fn key_of(raw: &str) -> Option<String> {
    let inner = &raw[1..raw.len() - 1];
    if inner.contains('\\') {
        serde_json::from_str::<String>(raw).ok()
    } else {
        Some(inner.to_owned())
    }
}

impl Scanner {
    /// Reads the envelope up to the first element of `imdata`, finding `subscriptionId` on the
    /// way (or, when it comes after `imdata`, by skimming the rest once).
    fn open(text: String) -> Result<(Scanner, Vec<String>), MalformedError> {
        let bad = |d: String| MalformedError::new(WHAT, d);
        let b = text.as_bytes();
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return Err(bad(expected("an object", i)));
        }
        i = ws(b, i + 1);
        let mut ids: Option<Vec<String>> = None;
        let mut imdata: Option<usize> = None;
        let mut imdata_bad = false;
        if b.get(i) != Some(&b'}') {
            loop {
                if b.get(i) != Some(&b'"') {
                    return Err(bad(expected("a key", i)));
                }
                let k_end = skip_string(b, i).map_err(bad)?;
                let key = key_of(&text[i..k_end]).unwrap_or_default();
                i = ws(b, k_end);
                if b.get(i) != Some(&b':') {
                    return Err(bad(expected("':'", i)));
                }
                i = ws(b, i + 1);
                let v_end = skip_value(b, i).map_err(bad)?;
                match key.as_str() {
                    "subscriptionId" => ids = Some(json::read_ids(&text[i..v_end]).map_err(bad)?),
                    "imdata" if b[i] == b'[' => {
                        imdata.get_or_insert(i);
                    }
                    "imdata" => imdata_bad = true,
                    _ => {}
                }
                // Stop at the array when the ids are known: the rest is read lazily.
                if ids.is_some() && imdata.is_some() {
                    break;
                }
                i = ws(b, v_end);
                match b.get(i) {
                    Some(b',') => i = ws(b, i + 1),
                    Some(b'}') => break,
                    _ => return Err(bad(expected("',' or '}'", i))),
                }
            }
        }
        let ids = match ids {
            Some(ids) if !ids.is_empty() => ids,
            Some(_) => return Err(bad("no subscription ids".to_owned())),
            None => return Err(bad("no subscriptionId".to_owned())),
        };
        if imdata_bad {
            return Err(bad("imdata is not an array".to_owned()));
        }
        let Some(start) = imdata else {
            return Err(bad("no imdata".to_owned()));
        };
        let sc = Scanner {
            pos: start + 1,
            at: At::ArrayStart,
            index: 0,
            text,
        };
        Ok((sc, ids))
    }

    /// The text of the next entry; `None` at the end of the document.
    fn next_entry(&mut self) -> Result<Option<&str>, String> {
        let b = self.text.as_bytes();
        loop {
            let i = ws(b, self.pos);
            match self.at {
                At::ArrayStart | At::ArrayNext => {
                    let i = match (self.at, b.get(i)) {
                        (_, Some(b']')) => {
                            self.pos = i + 1;
                            self.at = At::Members;
                            continue;
                        }
                        (At::ArrayStart, Some(_)) => i,
                        (At::ArrayNext, Some(b',')) => ws(b, i + 1),
                        _ => return Err(expected("',' or ']'", i)),
                    };
                    let end = skip_value(b, i)?;
                    self.pos = end;
                    self.at = At::ArrayNext;
                    return Ok(Some(&self.text[i..end]));
                }
                At::Members => match b.get(i) {
                    Some(b'}') => {
                        self.at = At::End;
                        self.pos = i + 1;
                    }
                    Some(b',') => {
                        // Another member: a second `imdata` is read too; others are skipped.
                        let k = ws(b, i + 1);
                        if b.get(k) != Some(&b'"') {
                            return Err(expected("a key", k));
                        }
                        let k_end = skip_string(b, k)?;
                        let is_imdata = key_of(&self.text[k..k_end]).as_deref() == Some("imdata");
                        let c = ws(b, k_end);
                        if b.get(c) != Some(&b':') {
                            return Err(expected("':'", c));
                        }
                        let v = ws(b, c + 1);
                        if is_imdata && b.get(v) == Some(&b'[') {
                            self.pos = v + 1;
                            self.at = At::ArrayStart;
                        } else if is_imdata {
                            return Err("imdata is not an array".to_owned());
                        } else {
                            self.pos = skip_value(b, v)?;
                        }
                    }
                    _ => return Err(expected("',' or '}'", i)),
                },
                At::End => {
                    return if i == b.len() {
                        Ok(None)
                    } else {
                        Err(format!("invalid JSON (trailing characters at byte {i})"))
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ids: &str, n: usize) -> String {
        let mut s = format!("{{\"subscriptionId\":{ids},\"imdata\":[");
        for k in 0..n {
            if k > 0 {
                s.push(',');
            }
            s.push_str(&format!(
                "{{\"fvTenant\":{{\"attributes\":{{\"dn\":\"uni/tn-t{k}\",\"status\":\"created\",\"descr\":\"a \\\"quoted\\\" [x] {{y}} {}\"}}}}}}",
                "p".repeat(400)
            ));
        }
        s.push_str("]}");
        s
    }

    fn read_all(
        text: &str,
        max: usize,
    ) -> (Vec<Mo>, Vec<EntryError>, Option<MalformedError>, usize) {
        let mut r = NotificationReader::open(text).expect("opens");
        let (mut mos, mut rej, mut err, mut slices) = (Vec::new(), Vec::new(), None, 0);
        while !r.is_done() {
            let s = r.next_slice(max);
            assert!(s.mos.len() <= max);
            slices += 1;
            mos.extend(s.mos);
            rej.extend(s.rejected);
            if s.error.is_some() {
                err = s.error;
            }
        }
        (mos, rej, err, slices)
    }

    #[test]
    fn a_large_frame_streams_in_slices_and_equals_the_whole_reading() {
        let text = frame("[\"7\",\"9\"]", 2000);
        assert!(text.len() > STREAM_BYTES);
        let whole = parse_notification(&text).unwrap();
        let r = NotificationReader::open(&text).unwrap();
        assert!(r.is_streaming());
        assert_eq!(r.subscription_ids(), ["7", "9"]);
        let (mos, rej, err, slices) = read_all(&text, 300);
        assert_eq!(slices, 7);
        assert!(rej.is_empty() && err.is_none());
        assert_eq!(mos, whole.mos);
    }

    #[test]
    fn ids_after_imdata_are_found() {
        let body = frame("[\"5\"]", 1000);
        let entries = &body[body.find("\"imdata\":").unwrap() + 9..body.len() - 1];
        let text = format!("{{\"imdata\":{entries},\"subscriptionId\":[\"5\"]}}");
        let r = NotificationReader::open(&text).unwrap();
        assert!(r.is_streaming());
        assert_eq!(r.subscription_ids(), ["5"]);
        let (mos, rej, err, _) = read_all(&text, 64);
        assert_eq!(mos.len(), 1000);
        assert!(rej.is_empty() && err.is_none());
        assert_eq!(mos, parse_notification(&text).unwrap().mos);
    }

    #[test]
    fn a_broken_entry_is_rejected_alone_and_a_broken_end_is_reported() {
        let mut text = frame("[\"5\"]", 1000);
        // Entry 500 loses its closing brace of attributes: still balanced for the scanner?
        // Make it a bad literal instead, which only the entry reader notices.
        let at = text.match_indices("uni/tn-t500\"").next().unwrap().0;
        text.replace_range(at - 6..at - 5, "X");
        let (mos, rej, err, _) = read_all(&text, 100);
        assert_eq!(mos.len(), 999);
        assert_eq!(rej.len(), 1);
        assert_eq!(rej[0].index, 500);
        assert!(err.is_none());

        let mut cut = frame("[\"5\"]", 1000);
        cut.truncate(cut.len() - 1); // no closing brace
        let (mos, _, err, _) = read_all(&cut, 100);
        assert_eq!(mos.len(), 1000);
        assert!(err.is_some());

        let trailing = format!("{} x", frame("[\"5\"]", 1000));
        assert!(read_all(&trailing, 100).2.is_some());
    }

    #[test]
    fn envelope_errors_fail_at_open() {
        let body = frame("[\"5\"]", 1000);
        for (bad, why) in [
            (
                body.replacen("\"subscriptionId\":[\"5\"],", "", 1),
                "no subscriptionId",
            ),
            (body.replacen("[\"5\"]", "[]", 1), "no subscription ids"),
            (body.replacen("[\"5\"]", "[\"x\"]", 1), "subscriptionId"),
            (
                body.replacen("\"imdata\":[", "\"imdatum\":[", 1),
                "no imdata",
            ),
        ] {
            let e = NotificationReader::open(&bad).err().expect(why);
            assert!(e.detail.contains(why), "{why}: {}", e.detail);
        }
    }

    #[test]
    fn small_frames_and_xml_are_read_whole_and_handed_out_in_slices() {
        let text = frame("[\"5\"]", 10);
        let r = NotificationReader::open(&text).unwrap();
        assert!(!r.is_streaming());
        let (mos, _, _, slices) = read_all(&text, 4);
        assert_eq!((mos.len(), slices), (10, 3));
        let xml = "<?xml version=\"1.0\"?><imdata subscriptionId=\"5\"><fvTenant dn=\"uni/tn-a\" status=\"created\"/></imdata>";
        let (mos, _, _, _) = read_all(xml, 4);
        assert_eq!(mos.len(), 1);
        assert!(NotificationReader::open("nope").is_err());
    }

    #[test]
    fn hostile_input_never_panics() {
        let base = frame("[\"5\"]", 700);
        for cut in (0..base.len()).step_by(base.len() / 97) {
            let t = &base[..cut];
            if let Ok(mut r) = NotificationReader::open(t) {
                while !r.is_done() {
                    r.next_slice(50);
                }
            }
        }
        let deep = format!(
            "{{\"subscriptionId\":[\"5\"],\"imdata\":[{}{}],\"pad\":\"{}\"}}",
            "[".repeat(5000),
            "]".repeat(5000),
            "p".repeat(STREAM_BYTES)
        );
        let (mos, rej, err, _) = read_all(&deep, 10);
        assert!(mos.is_empty() && rej.len() == 1 && err.is_none());
    }
}
