// Rule set as static tables for `lpwan_schc`, written by `schc rules export-rust`.
// Regenerate it from the JSON rule file rather than editing it.
// 2 rules: 1 compression, 1 no-compression, 0 fragmentation.
// Compiled form only (`--compiled-only`): for `codec::compress_compiled` and
// `codec::decompress_compiled`; the descriptor tables are left out.

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

/// The target values' bytes.
static POOL: [u8; 0] = [];

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
    lpwan_schc::rule::RuleSet::new_unchecked(&RULES, &[], &[], &POOL).with_index(INDEX);
