//! Rule sets as Rust source for devices without a heap (feature `std`).
//!
//! [`to_rust`] writes the four tables behind a [`RuleSetBuf`] as `static` items and a
//! `pub static RULE_SET` that borrows them through [`RuleSet::new_unchecked`]: what
//! `schc rules export-rust FILE` prints. [`to_rust_compiled`] (`--compiled-only`) leaves the
//! descriptor tables out, for devices on the compiled-only entry points. Every type is named by its full path
//! (`lpwan_schc::rule::...`), so the text compiles as a module of a `#![no_std]` firmware with
//! no `use` lines and no allocator. The output is laid out as `rustfmt` would lay it out.
//!
//! This module only formats: it neither reads JSON nor validates (call
//! [`RuleSetBuf::validate`] first, or `RuleSet::validate` in a device test).
//!
//! [`RuleSet::new_unchecked`]: crate::rule::RuleSet::new_unchecked

use core::fmt::{self, Write};
use std::string::String;

use crate::rule::compiled::{MO_EQUAL_POOL, MO_MASK};
use crate::rule::index::RuleIndexBuf;
use crate::rule::{FieldDesc, FragParams, Nature, Rule, RuleSet, RuleSetBuf, Timer, ValueRef};

/// The path every generated type is named by.
const PATH: &str = "lpwan_schc::rule::";

/// Bytes per line of the pool: after the indent, 16 of ` 0x00,` fit in 100 columns.
const POOL_PER_LINE: usize = 16;

/// The rule set as Rust source: `static RULES`, `FIELDS`, `VALUES`, `POOL` and
/// `pub static RULE_SET: RuleSet<'static>`.
///
/// ```
/// use lpwan_schc::{export, rule::{RuleId, RuleSetBuf}};
///
/// let mut set = RuleSetBuf::new();
/// set.push_no_compression(RuleId::new(0, 8));
/// let src = export::to_rust(&set);
/// assert!(src.contains("RuleSet::new_unchecked(&RULES, &FIELDS, &VALUES, &POOL)"));
/// ```
pub fn to_rust(set: &RuleSetBuf) -> String {
    let mut out = String::new();
    // Writing into a `String` cannot fail.
    let _ = write_rust(&mut out, &set.as_set(), set.index(), false);
    out
}

/// [`to_rust`] without the `FieldDesc` and `ValueRef` tables, for a device that only calls
/// `codec::compress_compiled` and `codec::decompress_compiled`: the compiled table of the
/// index (14 bytes a field) stands for the descriptors. `RULE_SET` is then made with empty
/// `fields` and `values`, so it cannot be validated: check in a test that its tables equal
/// the ones [`to_rust`] writes for the same file (which validate). A set without an index
/// (no compression rule compiles) is written as [`to_rust`] writes it.
///
/// ```
/// use lpwan_schc::{export, rule::{RuleId, RuleSetBuf}};
///
/// let mut set = RuleSetBuf::new();
/// set.push_no_compression(RuleId::new(0, 8));
/// set.build_index().unwrap();
/// let src = export::to_rust_compiled(&set);
/// assert!(src.contains("RuleSet::new_unchecked(&RULES, &[], &[], &POOL).with_index(INDEX)"));
/// assert!(!src.contains("static FIELDS"));
/// ```
pub fn to_rust_compiled(set: &RuleSetBuf) -> String {
    let mut out = String::new();
    let _ = write_rust(&mut out, &set.as_set(), set.index(), true);
    out
}

/// A one-line description of a rule set: how many rules of each nature.
///
/// ```
/// use lpwan_schc::{export, rule::{RuleId, RuleSetBuf}};
///
/// let mut set = RuleSetBuf::new();
/// set.push_no_compression(RuleId::new(0, 8));
/// assert_eq!(
///     export::summary(&set.as_set()),
///     "1 rule: 0 compression, 1 no-compression, 0 fragmentation"
/// );
/// ```
pub fn summary(set: &RuleSet<'_>) -> String {
    let rules = set.rules();
    let count = |f: fn(&Nature) -> bool| rules.iter().filter(|r| f(&r.nature)).count();
    let compression = count(|n| matches!(n, Nature::Compression(_)));
    let no_compression = count(|n| matches!(n, Nature::NoCompression));
    let fragmentation = count(|n| matches!(n, Nature::Fragmentation(_)));
    let plural = if rules.len() == 1 { "" } else { "s" };
    std::format!(
        "{} rule{plural}: {compression} compression, {no_compression} no-compression, \
         {fragmentation} fragmentation",
        rules.len()
    )
}

fn write_rust(
    out: &mut String,
    set: &RuleSet<'_>,
    index: Option<&RuleIndexBuf>,
    compiled_only: bool,
) -> fmt::Result {
    let (rules, fields, values, pool) = set.tables();
    let compiled_only = compiled_only && index.is_some();
    writeln!(
        out,
        "// Rule set as static tables for `lpwan_schc`, written by `schc rules export-rust`."
    )?;
    writeln!(
        out,
        "// Regenerate it from the JSON rule file rather than editing it."
    )?;
    writeln!(out, "// {}.", summary(set))?;
    if compiled_only {
        writeln!(
            out,
            "// Compiled form only (`--compiled-only`): for `codec::compress_compiled` and"
        )?;
        writeln!(
            out,
            "// `codec::decompress_compiled`; the descriptor tables are left out."
        )?;
    }
    writeln!(out)?;

    writeln!(out, "/// The rules, in set order.")?;
    open_table(out, "RULES", "lpwan_schc::rule::Rule", rules.len())?;
    for rule in rules {
        write_rule(out, rule)?;
    }
    close_table(out, rules.len())?;

    if !compiled_only {
        writeln!(
            out,
            "/// The field descriptors of the compression rules, rule after rule."
        )?;
        open_table(out, "FIELDS", "lpwan_schc::rule::FieldDesc", fields.len())?;
        // The raw table, as the spans in `RULES` index it; a comment where a rule's entries start.
        for (i, fd) in fields.iter().enumerate() {
            for rule in rules {
                if matches!(rule.nature, Nature::Compression(s) if s.start as usize == i && s.len > 0)
                {
                    writeln!(out, "    // Rule {}.", rule.id)?;
                }
            }
            write_field(out, fd)?;
        }
        close_table(out, fields.len())?;

        writeln!(out, "/// Where each target value lies in `POOL`.")?;
        open_table(out, "VALUES", "lpwan_schc::rule::ValueRef", values.len())?;
        for &ValueRef { offset, len } in values {
            writeln!(out, "    {PATH}ValueRef::new({offset}, {len}),")?;
        }
        close_table(out, values.len())?;
    }

    // The compiled-only form needs the pool only for values too long to hold inline.
    let pool = match index {
        Some(ix)
            if compiled_only
                && !ix
                    .compiled
                    .iter()
                    .any(|c| c.op() & MO_MASK == MO_EQUAL_POOL) =>
        {
            &[]
        }
        _ => pool,
    };
    writeln!(out, "/// The target values' bytes.")?;
    open_table(out, "POOL", "u8", pool.len())?;
    for line in pool.chunks(POOL_PER_LINE) {
        out.push_str("   ");
        for b in line {
            write!(out, " 0x{b:02x},")?;
        }
        out.push('\n');
    }
    close_table(out, pool.len())?;

    let Some(ix) = index else {
        writeln!(out, "/// The rule set, for `lpwan_schc::codec`.")?;
        writeln!(out, "pub static RULE_SET: {PATH}RuleSet<'static> =")?;
        return writeln!(
            out,
            "    {PATH}RuleSet::new_unchecked(&RULES, &FIELDS, &VALUES, &POOL);"
        );
    };
    write_index(out, ix)?;
    writeln!(out, "/// The index of the rules.")?;
    writeln!(
        out,
        "static INDEX: {PATH}RuleIndex<'static> = {PATH}RuleIndex {{"
    )?;
    for (field, table) in [
        ("ids", "INDEX_IDS"),
        ("keys", "INDEX_KEYS"),
        ("entries", "INDEX_ENTRIES"),
        ("compiled", "INDEX_COMPILED"),
    ] {
        writeln!(out, "    {field}: &{table},")?;
    }
    // Plans cost 2 x 264 bytes per rule: a device matches entry by entry instead.
    writeln!(out, "    plans: &[],")?;
    writeln!(out, "}};")?;
    writeln!(out)?;
    writeln!(
        out,
        "/// The rule set with its index, for `lpwan_schc::codec`."
    )?;
    writeln!(out, "pub static RULE_SET: {PATH}RuleSet<'static> =")?;
    let tables = if compiled_only {
        "&RULES, &[], &[], &POOL"
    } else {
        "&RULES, &FIELDS, &VALUES, &POOL"
    };
    writeln!(
        out,
        "    {PATH}RuleSet::new_unchecked({tables}).with_index(INDEX);"
    )
}

/// The index tables (`lpwan_schc::rule::index`), as [`RuleIndexBuf::build`] made them.
fn write_index(out: &mut String, ix: &RuleIndexBuf) -> fmt::Result {
    const IX: &str = "lpwan_schc::rule::index::";
    writeln!(out, "/// The rules by left-aligned rule ID.")?;
    open_table(
        out,
        "INDEX_IDS",
        "lpwan_schc::rule::index::IdEntry",
        ix.ids.len(),
    )?;
    for e in &ix.ids {
        writeln!(out, "    {IX}IdEntry {{")?;
        writeln!(out, "        left: {:#010x},", e.left)?;
        writeln!(out, "        rule: {},", e.rule)?;
        writeln!(out, "    }},")?;
    }
    close_table(out, ix.ids.len())?;
    writeln!(
        out,
        "/// The fields the compression index keys on, then the groups of key fields rules pin."
    )?;
    let n = ix.keys.len() + ix.groups.len();
    open_table(out, "INDEX_KEYS", "lpwan_schc::rule::index::KeyField", n)?;
    for k in &ix.keys {
        writeln!(out, "    {IX}KeyField {{")?;
        writeln!(out, "        fid: {PATH}Fid::{:?},", k.fid)?;
        writeln!(out, "        fp: {},", k.fp)?;
        writeln!(out, "    }},")?;
    }
    for g in &ix.groups {
        writeln!(out, "    {IX}group_entry({g:#06x}),")?;
    }
    close_table(out, n)?;
    writeln!(out, "/// The rules by hash of their key values.")?;
    open_table(
        out,
        "INDEX_ENTRIES",
        "lpwan_schc::rule::index::KeyEntry",
        ix.entries.len(),
    )?;
    for e in &ix.entries {
        writeln!(out, "    {IX}KeyEntry {{")?;
        writeln!(out, "        hash: {:#010x},", e.hash)?;
        writeln!(out, "        rule: {},", e.rule)?;
        writeln!(out, "    }},")?;
    }
    close_table(out, ix.entries.len())?;
    writeln!(
        out,
        "/// The compiled form of `FIELDS`, entry for entry (target value, key, position, length,"
    )?;
    writeln!(out, "/// operation, argument).")?;
    open_table(
        out,
        "INDEX_COMPILED",
        "lpwan_schc::rule::CompiledField",
        ix.compiled.len(),
    )?;
    for c in &ix.compiled {
        let (tv, key, fp, len, op, arg) = c.parts();
        writeln!(
            out,
            "    {PATH}CompiledField::new({tv:#018x}, {key}, {fp}, {len}, {op:#04x}, {arg}),"
        )?;
    }
    close_table(out, ix.compiled.len())
}

/// `static NAME: [TYPE; len] = [`, or the whole empty table (`= [];`) when `len` is 0.
fn open_table(out: &mut String, name: &str, ty: &str, len: usize) -> fmt::Result {
    let end = if len == 0 { "];" } else { "" };
    writeln!(out, "static {name}: [{ty}; {len}] = [{end}")
}

/// Closes a table opened by [`open_table`], and the blank line after it.
fn close_table(out: &mut String, len: usize) -> fmt::Result {
    if len > 0 {
        writeln!(out, "];")?;
    }
    writeln!(out)
}

fn write_rule(out: &mut String, rule: &Rule) -> fmt::Result {
    writeln!(out, "    {PATH}Rule {{")?;
    writeln!(
        out,
        "        id: {PATH}RuleId::new({}, {}),",
        rule.id.value, rule.id.length
    )?;
    match rule.nature {
        Nature::Compression(span) => writeln!(
            out,
            "        nature: {PATH}Nature::Compression({PATH}Span::new({}, {})),",
            span.start, span.len
        )?,
        Nature::NoCompression => writeln!(out, "        nature: {PATH}Nature::NoCompression,")?,
        Nature::Fragmentation(p) => {
            writeln!(
                out,
                "        nature: {PATH}Nature::Fragmentation({PATH}FragParams {{"
            )?;
            write_frag(out, &p)?;
            writeln!(out, "        }}),")?;
        }
    }
    writeln!(out, "    }},")
}

fn write_field(out: &mut String, fd: &FieldDesc) -> fmt::Result {
    // The derived `Debug` of these enums is their Rust syntax (`Fixed(4)`, `Msb(12)`,
    // `CoapOption(11)`): prefixed with the full path it is a valid expression.
    let FieldDesc {
        fid,
        fl,
        fp,
        di,
        tv,
        mo,
        cda,
    } = fd;
    writeln!(out, "    {PATH}FieldDesc {{")?;
    writeln!(out, "        fid: {PATH}Fid::{fid:?},")?;
    writeln!(out, "        fl: {PATH}FieldLength::{fl:?},")?;
    writeln!(out, "        fp: {fp},")?;
    writeln!(out, "        di: {PATH}DirectionIndicator::{di:?},")?;
    writeln!(
        out,
        "        tv: {PATH}Span::new({}, {}),",
        tv.start, tv.len
    )?;
    writeln!(out, "        mo: {PATH}MatchingOperator::{mo:?},")?;
    writeln!(out, "        cda: {PATH}Cda::{cda:?},")?;
    writeln!(out, "    }},")
}

fn write_frag(out: &mut String, p: &FragParams) -> fmt::Result {
    // Destructured so that a new parameter cannot be forgotten here.
    let FragParams {
        mode,
        direction,
        l2_word,
        dtag_bits,
        w_bits,
        fcn_bits,
        window_size,
        rcs,
        max_packet_size,
        max_interleaved,
        inactivity_timer,
        retransmission_timer,
        max_ack_requests,
        tile_size,
        tile_in_all1,
        ack_behavior,
        bitmap_format,
        last_bitmap_compression,
    } = p;
    const IND: &str = "            ";
    writeln!(out, "{IND}mode: {PATH}FragMode::{mode:?},")?;
    writeln!(out, "{IND}direction: {PATH}Direction::{direction:?},")?;
    writeln!(out, "{IND}l2_word: {l2_word},")?;
    writeln!(out, "{IND}dtag_bits: {dtag_bits},")?;
    writeln!(out, "{IND}w_bits: {w_bits},")?;
    writeln!(out, "{IND}fcn_bits: {fcn_bits},")?;
    writeln!(out, "{IND}window_size: {window_size},")?;
    writeln!(out, "{IND}rcs: {PATH}RcsAlgorithm::{rcs:?},")?;
    writeln!(out, "{IND}max_packet_size: {max_packet_size},")?;
    writeln!(out, "{IND}max_interleaved: {max_interleaved},")?;
    write_timer(out, "inactivity_timer", inactivity_timer)?;
    write_timer(out, "retransmission_timer", retransmission_timer)?;
    writeln!(out, "{IND}max_ack_requests: {max_ack_requests},")?;
    writeln!(out, "{IND}tile_size: {tile_size},")?;
    writeln!(
        out,
        "{IND}tile_in_all1: {PATH}TileInAll1::{tile_in_all1:?},"
    )?;
    writeln!(
        out,
        "{IND}ack_behavior: {PATH}AckBehavior::{ack_behavior:?},"
    )?;
    writeln!(
        out,
        "{IND}bitmap_format: {PATH}BitmapFormat::{bitmap_format:?},"
    )?;
    writeln!(
        out,
        "{IND}last_bitmap_compression: {last_bitmap_compression},"
    )
}

fn write_timer(out: &mut String, name: &str, timer: &Option<Timer>) -> fmt::Result {
    match timer {
        None => writeln!(out, "            {name}: None,"),
        Some(Timer { tick_exp, ticks }) => {
            writeln!(out, "            {name}: Some({PATH}Timer {{")?;
            writeln!(out, "                tick_exp: {tick_exp},")?;
            writeln!(out, "                ticks: {ticks},")?;
            writeln!(out, "            }}),")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{
        AckBehavior, BitmapFormat, Cda, Direction, DirectionIndicator, Fid, FieldLength, FieldSpec,
        FragMode, MatchingOperator, RcsAlgorithm, RuleId, TileInAll1,
    };
    use std::vec;

    fn sample() -> RuleSetBuf {
        let mut set = RuleSetBuf::new();
        set.push_compression(
            RuleId::new(1, 8),
            &[FieldSpec {
                fid: Fid::CoapOption(11),
                fl: FieldLength::Variable,
                fp: 1,
                di: DirectionIndicator::Up,
                tv: vec![b"temp".to_vec()],
                mo: MatchingOperator::Msb(16),
                cda: Cda::Lsb,
            }],
        )
        .unwrap();
        set.push_fragmentation(
            RuleId::new(20, 8),
            FragParams {
                mode: FragMode::AckOnError,
                direction: Direction::Up,
                l2_word: 8,
                dtag_bits: 0,
                w_bits: 2,
                fcn_bits: 6,
                window_size: 63,
                rcs: RcsAlgorithm::Crc32,
                max_packet_size: 2520,
                max_interleaved: 1,
                inactivity_timer: Some(Timer {
                    tick_exp: 20,
                    ticks: 41199,
                }),
                retransmission_timer: None,
                max_ack_requests: 8,
                tile_size: 80,
                tile_in_all1: TileInAll1::SenderChoice,
                ack_behavior: AckBehavior::AfterAll0,
                bitmap_format: BitmapFormat::Rfc8724,
                last_bitmap_compression: true,
            },
        );
        set.push_no_compression(RuleId::new(22, 8));
        set
    }

    #[test]
    fn tables_are_written_with_full_paths() {
        let src = to_rust(&sample());
        for needle in [
            "static RULES: [lpwan_schc::rule::Rule; 3] = [",
            "static FIELDS: [lpwan_schc::rule::FieldDesc; 1] = [",
            "static VALUES: [lpwan_schc::rule::ValueRef; 1] = [",
            "static POOL: [u8; 4] = [\n    0x74, 0x65, 0x6d, 0x70,\n];",
            "fid: lpwan_schc::rule::Fid::CoapOption(11),",
            "fl: lpwan_schc::rule::FieldLength::Variable,",
            "mo: lpwan_schc::rule::MatchingOperator::Msb(16),",
            "nature: lpwan_schc::rule::Nature::Compression(lpwan_schc::rule::Span::new(0, 1)),",
            "mode: lpwan_schc::rule::FragMode::AckOnError,",
            "inactivity_timer: Some(lpwan_schc::rule::Timer {",
            "retransmission_timer: None,",
            "last_bitmap_compression: true,",
            "nature: lpwan_schc::rule::Nature::NoCompression,",
            "// 3 rules: 1 compression, 1 no-compression, 1 fragmentation.",
            "pub static RULE_SET: lpwan_schc::rule::RuleSet<'static> =\n    \
             lpwan_schc::rule::RuleSet::new_unchecked(&RULES, &FIELDS, &VALUES, &POOL);\n",
        ] {
            assert!(src.contains(needle), "missing {needle:?} in:\n{src}");
        }
        assert!(!src.contains("alloc") && !src.contains("vec!"));
    }

    #[test]
    fn an_indexed_set_brings_its_index() {
        let mut set = sample();
        set.build_index().unwrap();
        let src = to_rust(&set);
        for needle in [
            "static INDEX_IDS: [lpwan_schc::rule::index::IdEntry; 3] = [",
            "static INDEX_KEYS: [lpwan_schc::rule::index::KeyField; 2] = [",
            "    lpwan_schc::rule::index::group_entry(0x0000),\n    lpwan_schc::rule::index::group_entry(0x0100),\n",
            "static INDEX_ENTRIES: [lpwan_schc::rule::index::KeyEntry; 2] = [",
            "static INDEX_COMPILED: [lpwan_schc::rule::CompiledField; ",
            "    entries: &INDEX_ENTRIES,\n    compiled: &INDEX_COMPILED,\n    plans: &[],\n};\n",
            "RuleSet::new_unchecked(&RULES, &FIELDS, &VALUES, &POOL).with_index(INDEX);\n",
        ] {
            assert!(src.contains(needle), "missing {needle:?} in:\n{src}");
        }
    }

    #[test]
    fn empty_set() {
        let src = to_rust(&RuleSetBuf::new());
        assert!(src.contains("static RULES: [lpwan_schc::rule::Rule; 0] = [];"));
        assert!(src.contains("static POOL: [u8; 0] = [];"));
        assert!(src.contains("// 0 rules: 0 compression, 0 no-compression, 0 fragmentation."));
    }
}
