//! Property tests of every parser that reads input from the network or a
//! config file: arbitrary input never panics, and what is accepted obeys
//! the rules. The default run tries a few hundred cases per property;
//! `scripts/fuzz.sh` runs the same properties for much longer.

use std::path::Path;

use meteord::config::{unescape, ConfigFile, Source};
use meteord::control::lines::{Framed, LineBuffer};
use meteord::control::Command;
use meteord::names::is_space;
use meteord::subscriber::push::parse_channel_spec;
use meteord::subscriber::request::{head_end, header, parse_push_target, parse_request_line};
use meteord::subscriber::static_files::legal_relative_path;
use meteord::template::{Kind, Template};
use proptest::prelude::*;

/// Bytes that look a little like protocol input, so that cases get past
/// the first check often.
fn protocol_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b' '),
            Just(b'\t'),
            Just(b'\r'),
            Just(b'\n'),
            Just(b'/'),
            Just(b'.'),
            Just(b'~'),
            Just(b'?'),
            Just(0u8),
            b'a'..=b'z',
            b'A'..=b'Z',
            b'0'..=b'9',
            any::<u8>(),
        ],
        0..200,
    )
}

fn with_prefixes(words: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    (prop::sample::select(words), protocol_bytes()).prop_map(|(w, rest)| {
        let mut v = w.as_bytes().to_vec();
        v.extend(rest);
        v
    })
}

proptest! {
    #[test]
    fn control_lines(line in with_prefixes(&["ADDMESSAGE", "COUNTSUBSCRIBERS", "LISTCHANNELS", "SHOWSTATS", "QUIT", ""])) {
        let line: Vec<u8> = line.into_iter().filter(|&b| b != b'\n').collect();
        match Command::parse(&line) {
            Command::AddMessage { channel, text } => {
                prop_assert!(!channel.is_empty());
                prop_assert!(!channel.iter().any(|&b| is_space(b)));
                prop_assert!(line.ends_with(text));
                prop_assert!(line.starts_with(b"ADDMESSAGE"));
            }
            Command::CountSubscribers { channel } => {
                prop_assert!(!channel.is_empty());
                prop_assert!(line.ends_with(channel));
            }
            Command::ListChannels => prop_assert_eq!(&line[..], b"LISTCHANNELS"),
            Command::Quit => prop_assert_eq!(&line[..], b"QUIT"),
            Command::ShowStats => prop_assert!(line.starts_with(b"SHOWSTATS")),
            Command::Invalid => {}
        }
    }

    /// However the stream is cut into reads, the same lines come out.
    #[test]
    fn line_framing_ignores_how_reads_split(input in protocol_bytes(), cuts in prop::collection::vec(0usize..200, 0..8)) {
        let frame = |chunks: Vec<&[u8]>| {
            let mut lines = LineBuffer::new(64);
            let mut out = Vec::new();
            for chunk in chunks {
                lines.read_target().extend_from_slice(chunk);
                while let Some(f) = lines.next_line() {
                    out.push(match f {
                        Framed::Line(l) => format!("L{:?}", l),
                        Framed::Malformed => "M".into(),
                        Framed::TooLong => "T".into(),
                    });
                }
            }
            out
        };
        let whole = frame(vec![&input]);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
        cuts.sort();
        let mut chunks = Vec::new();
        let mut start = 0;
        for cut in cuts {
            chunks.push(&input[start..cut]);
            start = cut;
        }
        chunks.push(&input[start..]);
        // A line over the limit may be reported once per read that sees it
        // unfinished; everything else must match exactly.
        let split = frame(chunks);
        let strip = |v: Vec<String>| v.into_iter().filter(|s| s != "T").collect::<Vec<_>>();
        prop_assert_eq!(strip(whole), strip(split));
    }

    #[test]
    fn http_request_heads(head in with_prefixes(&["GET ", "POST ", "GET /push/", "GET /disconnect/", "GET /"])) {
        let _ = head_end(&head);
        let _ = header(&head, "User-Agent");
        let first_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
        if let Some(line) = parse_request_line(first_line) {
            if let Some(push) = parse_push_target(line.target, "/push") {
                prop_assert!(line.target.to_ascii_lowercase().starts_with("/push/"));
                prop_assert!(!push.host_id.is_empty() && push.host_id.bytes().all(|b| b.is_ascii_alphanumeric()));
                prop_assert!(!push.mode.is_empty() && push.mode.bytes().all(|b| b.is_ascii_alphanumeric()));
                prop_assert!(!push.channels.is_empty());
                for spec in push.channels.split('/') {
                    if let Some((name, _)) = parse_channel_spec(spec) {
                        prop_assert!(name.iter().all(|&b| b.is_ascii_alphanumeric() || b"_-%".contains(&b)));
                    }
                }
            }
        }
    }

    /// No accepted path can leave the document root.
    #[test]
    fn static_paths_stay_inside_the_root(path in "[/.a-zA-Z0-9%\\\\_~ -]{0,40}") {
        if let Some(relative) = legal_relative_path(&path) {
            prop_assert!(!relative.contains(".."));
            prop_assert!(!relative.starts_with('/'));
            let root = Path::new("/srv/root");
            prop_assert!(root.join(relative).starts_with(root));
        }
    }

    #[test]
    fn config_files(text in "([A-Za-z\\[\\]# ]{0,20}[ \\t]?[^\\n]{0,30}\\n){0,8}") {
        match ConfigFile::parse(text.as_bytes(), "fuzz.conf", Source::File) {
            Ok(_) => {}
            Err(e) => {
                let message = e.to_string();
                prop_assert!(message.starts_with("fuzz.conf: line "), "{}", message);
            }
        }
        let _ = unescape(&text);
    }

    #[test]
    fn templates(source in protocol_bytes()) {
        for kind in [Kind::Header, Kind::Message, Kind::ChannelInfo] {
            let template = Template::parse(&source, kind);
            let mut out = Vec::new();
            template.render(&mut out, |_, out| out.extend_from_slice(b"X"));
            if !source.contains(&b'~') {
                prop_assert_eq!(&out, &source);
            }
        }
    }

    #[test]
    fn websocket_commands(text in "\\{\"type\":\"(subscribe|unsubscribe|ping|x)\"(,\"[a-z]{1,8}\":(\"[^\"]{0,10}\"|[0-9]{1,25}|true|null))*\\}|.{0,40}") {
        let _ = meteord::subscriber::ws::parse_command(&text);
    }
}
