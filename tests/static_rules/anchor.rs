// Rule set as static tables for `lpwan_schc`, written by `schc rules export-rust`.
// Regenerate it from the JSON rule file rather than editing it.
// 2 rules: 1 compression, 1 no-compression, 0 fragmentation.

/// The rules, in set order.
static RULES: [lpwan_schc::rule::Rule; 2] = [
    lpwan_schc::rule::Rule {
        id: lpwan_schc::rule::RuleId::new(1, 8),
        nature: lpwan_schc::rule::Nature::Compression(lpwan_schc::rule::Span::new(0, 21)),
    },
    lpwan_schc::rule::Rule {
        id: lpwan_schc::rule::RuleId::new(0, 8),
        nature: lpwan_schc::rule::Nature::NoCompression,
    },
];

/// The field descriptors of the compression rules, rule after rule.
static FIELDS: [lpwan_schc::rule::FieldDesc; 21] = [
    // Rule 1/8.
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6Version,
        fl: lpwan_schc::rule::FieldLength::Fixed(4),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(0, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6TrafficClass,
        fl: lpwan_schc::rule::FieldLength::Fixed(8),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(1, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6FlowLabel,
        fl: lpwan_schc::rule::FieldLength::Fixed(20),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(2, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6PayloadLength,
        fl: lpwan_schc::rule::FieldLength::Fixed(16),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(3, 0),
        mo: lpwan_schc::rule::MatchingOperator::Ignore,
        cda: lpwan_schc::rule::Cda::Compute,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6NextHeader,
        fl: lpwan_schc::rule::FieldLength::Fixed(8),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(3, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6HopLimit,
        fl: lpwan_schc::rule::FieldLength::Fixed(8),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(4, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6DevPrefix,
        fl: lpwan_schc::rule::FieldLength::Fixed(64),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(5, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6DevIid,
        fl: lpwan_schc::rule::FieldLength::Fixed(64),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(6, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6AppPrefix,
        fl: lpwan_schc::rule::FieldLength::Fixed(64),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(7, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::Ipv6AppIid,
        fl: lpwan_schc::rule::FieldLength::Fixed(64),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(8, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::UdpDevPort,
        fl: lpwan_schc::rule::FieldLength::Fixed(16),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(9, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::UdpAppPort,
        fl: lpwan_schc::rule::FieldLength::Fixed(16),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(10, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::UdpLength,
        fl: lpwan_schc::rule::FieldLength::Fixed(16),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(11, 0),
        mo: lpwan_schc::rule::MatchingOperator::Ignore,
        cda: lpwan_schc::rule::Cda::Compute,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::UdpChecksum,
        fl: lpwan_schc::rule::FieldLength::Fixed(16),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(11, 0),
        mo: lpwan_schc::rule::MatchingOperator::Ignore,
        cda: lpwan_schc::rule::Cda::Compute,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::CoapVersion,
        fl: lpwan_schc::rule::FieldLength::Fixed(2),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(11, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::CoapType,
        fl: lpwan_schc::rule::FieldLength::Fixed(2),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(12, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::CoapTkl,
        fl: lpwan_schc::rule::FieldLength::Fixed(4),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(13, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::CoapCode,
        fl: lpwan_schc::rule::FieldLength::Fixed(8),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(14, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::CoapMid,
        fl: lpwan_schc::rule::FieldLength::Fixed(16),
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(15, 1),
        mo: lpwan_schc::rule::MatchingOperator::Msb(12),
        cda: lpwan_schc::rule::Cda::Lsb,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::CoapToken,
        fl: lpwan_schc::rule::FieldLength::TokenLength,
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(16, 0),
        mo: lpwan_schc::rule::MatchingOperator::Ignore,
        cda: lpwan_schc::rule::Cda::ValueSent,
    },
    lpwan_schc::rule::FieldDesc {
        fid: lpwan_schc::rule::Fid::CoapOption(11),
        fl: lpwan_schc::rule::FieldLength::Variable,
        fp: 1,
        di: lpwan_schc::rule::DirectionIndicator::Bi,
        tv: lpwan_schc::rule::Span::new(16, 1),
        mo: lpwan_schc::rule::MatchingOperator::Equal,
        cda: lpwan_schc::rule::Cda::NotSent,
    },
];

/// Where each target value lies in `POOL`.
static VALUES: [lpwan_schc::rule::ValueRef; 17] = [
    lpwan_schc::rule::ValueRef::new(0, 1),
    lpwan_schc::rule::ValueRef::new(1, 1),
    lpwan_schc::rule::ValueRef::new(2, 3),
    lpwan_schc::rule::ValueRef::new(5, 1),
    lpwan_schc::rule::ValueRef::new(6, 1),
    lpwan_schc::rule::ValueRef::new(7, 8),
    lpwan_schc::rule::ValueRef::new(15, 8),
    lpwan_schc::rule::ValueRef::new(23, 8),
    lpwan_schc::rule::ValueRef::new(31, 8),
    lpwan_schc::rule::ValueRef::new(39, 2),
    lpwan_schc::rule::ValueRef::new(41, 2),
    lpwan_schc::rule::ValueRef::new(43, 1),
    lpwan_schc::rule::ValueRef::new(44, 1),
    lpwan_schc::rule::ValueRef::new(45, 1),
    lpwan_schc::rule::ValueRef::new(46, 1),
    lpwan_schc::rule::ValueRef::new(47, 2),
    lpwan_schc::rule::ValueRef::new(49, 4),
];

/// The target values' bytes.
static POOL: [u8; 53] = [
    0x06, 0x00, 0x00, 0x00, 0x00, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x0a, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0xd1, 0x00, 0x16, 0x33, 0x01, 0x00, 0x01, 0x01, 0x12,
    0x30, 0x74, 0x65, 0x6d, 0x70,
];

/// The rules by left-aligned rule ID.
static INDEX_IDS: [lpwan_schc::rule::index::IdEntry; 2] = [
    lpwan_schc::rule::index::IdEntry {
        left: 0x00000000,
        rule: 1,
    },
    lpwan_schc::rule::index::IdEntry {
        left: 0x01000000,
        rule: 0,
    },
];

/// The fields the compression index keys on, then the groups of key fields rules pin.
static INDEX_KEYS: [lpwan_schc::rule::index::KeyField; 2] = [
    lpwan_schc::rule::index::group_entry(0x0000),
    lpwan_schc::rule::index::group_entry(0x0100),
];

/// The rules by hash of their key values.
static INDEX_ENTRIES: [lpwan_schc::rule::index::KeyEntry; 2] = [
    lpwan_schc::rule::index::KeyEntry {
        hash: 0x1c77a22d,
        rule: 0,
    },
    lpwan_schc::rule::index::KeyEntry {
        hash: 0xe17d05ac,
        rule: 0,
    },
];

/// The compiled form of `FIELDS`, entry for entry (target value, key, position, length,
/// operation, argument).
static INDEX_COMPILED: [lpwan_schc::rule::CompiledField; 21] = [
    lpwan_schc::rule::CompiledField::new(0x0000000000000006, 0, 1, 4, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000000, 1, 1, 8, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000000, 2, 1, 20, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000000, 3, 1, 16, 0xd9, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000011, 4, 1, 8, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000040, 5, 1, 8, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x20010db8000a0000, 6, 1, 64, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000003, 7, 1, 64, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x20010db8000a0000, 8, 1, 64, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000020, 9, 1, 64, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x000000000000d100, 10, 1, 16, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000001633, 11, 1, 16, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000000, 12, 1, 16, 0xd9, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000000, 13, 1, 16, 0xd9, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000001, 14, 1, 2, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000000, 15, 1, 2, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000001, 16, 1, 4, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000000001, 17, 1, 8, 0xc2, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000000001230, 18, 1, 16, 0xd4, 12),
    lpwan_schc::rule::CompiledField::new(0x0000000000000000, 19, 1, 254, 0xc9, 0),
    lpwan_schc::rule::CompiledField::new(0x0000000074656d70, 43, 1, 255, 0xc2, 4),
];

/// The index of the rules.
static INDEX: lpwan_schc::rule::RuleIndex<'static> = lpwan_schc::rule::RuleIndex {
    ids: &INDEX_IDS,
    keys: &INDEX_KEYS,
    entries: &INDEX_ENTRIES,
    compiled: &INDEX_COMPILED,
    plans: &[],
};

/// The rule set with its index, for `lpwan_schc::codec`.
pub static RULE_SET: lpwan_schc::rule::RuleSet<'static> =
    lpwan_schc::rule::RuleSet::new_unchecked(&RULES, &FIELDS, &VALUES, &POOL).with_index(INDEX);
