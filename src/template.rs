//! The legacy `~placeholder~` templates, parsed once and rendered many times.
//!
//! meteord used two scanners: header and message templates replace any
//! `~anything~` (an unknown name renders as nothing, `~~` is one `~`), while
//! the channel-info template only replaces `~[A-Za-z0-9_]*~` and leaves any
//! other `~` in place. Parsing ahead of time keeps rendering to a few copies.

use bytes::Bytes;

/// The placeholders a template may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    // header
    Status,
    Server,
    ServerTime,
    ChannelInfo,
    // message
    Id,
    Channel,
    Text,
    Timestamp,
    // channel info
    Name,
    LastMsgId,
    MessageCount,
    SubscriberCount,
}

/// Which placeholders a template understands, and how it scans for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Header,
    Message,
    ChannelInfo,
}

impl Kind {
    fn field(self, name: &[u8]) -> Option<Field> {
        use Field::*;
        match (self, name) {
            (Kind::Header, b"status") => Some(Status),
            (Kind::Header, b"server") => Some(Server),
            (Kind::Header, b"servertime") => Some(ServerTime),
            (Kind::Header, b"channelinfo") => Some(ChannelInfo),
            (Kind::Message, b"id") => Some(Id),
            (Kind::Message, b"channel") => Some(Channel),
            (Kind::Message, b"text") => Some(Text),
            (Kind::Message, b"timestamp") => Some(Timestamp),
            (Kind::ChannelInfo, b"name") => Some(Name),
            (Kind::ChannelInfo, b"lastMsgID") => Some(LastMsgId),
            (Kind::ChannelInfo, b"messageCount") => Some(MessageCount),
            (Kind::ChannelInfo, b"subscriberCount") => Some(SubscriberCount),
            _ => None,
        }
    }

    /// May this byte stand between the two `~` of a placeholder?
    fn allows(self, b: u8) -> bool {
        match self {
            Kind::Header | Kind::Message => b != b'~',
            Kind::ChannelInfo => b.is_ascii_alphanumeric() || b == b'_',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Bytes),
    Field(Field),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    source: Bytes,
}

impl Template {
    pub fn parse(source: &[u8], kind: Kind) -> Template {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < source.len() {
            if source[i] == b'~' {
                let rest = &source[i + 1..];
                let len = rest.iter().take_while(|&&b| kind.allows(b)).count();
                if rest.get(len) == Some(&b'~') {
                    let name = &rest[..len];
                    if name.is_empty() {
                        literal.push(b'~');
                    } else if let Some(field) = kind.field(name) {
                        if !literal.is_empty() {
                            parts.push(Part::Literal(Bytes::from(std::mem::take(&mut literal))));
                        }
                        parts.push(Part::Field(field));
                    }
                    // An unknown name renders as nothing.
                    i += len + 2;
                    continue;
                }
            }
            literal.push(source[i]);
            i += 1;
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(Bytes::from(literal)));
        }
        Template {
            parts,
            source: Bytes::copy_from_slice(source),
        }
    }

    /// The template as configured (escapes already applied).
    pub fn source(&self) -> &[u8] {
        &self.source
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn uses(&self, field: Field) -> bool {
        self.parts.iter().any(|p| *p == Part::Field(field))
    }

    /// Append the rendered template to `out`; `value` writes one field.
    pub fn render(&self, out: &mut Vec<u8>, mut value: impl FnMut(Field, &mut Vec<u8>)) {
        for part in &self.parts {
            match part {
                Part::Literal(bytes) => out.extend_from_slice(bytes),
                Part::Field(field) => value(*field, out),
            }
        }
    }
}

/// Append a decimal number without going through `fmt`.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, kind: Kind) -> String {
        let t = Template::parse(src.as_bytes(), kind);
        let mut out = Vec::new();
        t.render(&mut out, |f, out| {
            out.extend_from_slice(format!("{f:?}").as_bytes())
        });
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn message_fields_and_tildes() {
        assert_eq!(
            render(
                "p(~id~,\"~channel~\",\"~text~\") ~timestamp~",
                Kind::Message
            ),
            "p(Id,\"Channel\",\"Text\") Timestamp"
        );
        assert_eq!(render("a~~b", Kind::Message), "a~b");
        assert_eq!(render("a~nope~b", Kind::Message), "ab");
        assert_eq!(render("a~ with space ~b", Kind::Message), "ab");
        assert_eq!(render("dangling ~id", Kind::Message), "dangling ~id");
        // A header template does not know message fields.
        assert_eq!(render("~id~~status~", Kind::Header), "Status");
    }

    #[test]
    fn channel_info_scans_names_only() {
        assert_eq!(
            render("ch(\"~name~\", ~lastMsgID~)", Kind::ChannelInfo),
            "ch(\"Name\", LastMsgId)"
        );
        // "~a b~" is not a placeholder for the channel-info scanner, so the
        // first tilde stays; "~x~" after it is one (unknown, so empty).
        assert_eq!(render("~a b~x~", Kind::ChannelInfo), "~a b");
        assert_eq!(render("~a b~x~y~", Kind::ChannelInfo), "~a by~");
        assert_eq!(render("~~", Kind::ChannelInfo), "~");
    }
}
