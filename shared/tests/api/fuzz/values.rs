//! JSON values from the contract's schemas: `$ref`, `allOf`, `oneOf`/`anyOf`, `const`, `enum`,
//! `type` lists, string formats and patterns, length, item and range bounds, `contentSchema`.
//! Fields named like a resource (`product_id`, `region`, `Key`, …) draw from the world's
//! pools as well, so valid bodies reach past the lookups. "Edgy" values are mostly valid, but
//! now and then a part is just outside its bounds, of another type, null, or an object misses a
//! required field or has an unknown one.

use std::sync::Arc;

use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use serde_json::{Map, Value as Json, json};

use super::contract::resolve;
use super::world::{Pools, pool_for};

pub(crate) type Gen = BoxedStrategy<Json>;

/// The longest text or list a defect makes: past every documented limit (EULA text 100,000
/// characters, 100 metering records), small enough for a case to stay fast.
const HUGE_TEXT: usize = 100_001;
const HUGE_LIST: usize = 101;

/// Instants that date a bill run or an order: a run bills every closed period from an
/// instance's order up to its `as_of` (R11.3), so these stay within days of the world's now
/// and a case bills tens of periods, not the millions since year 1.
const CLOCK_NAMES: [&str; 2] = ["as_of", "X-Clock-Now"];
/// Integer fields that hold Unix seconds.
const UNIX_NAMES: [&str; 4] = ["StartTime", "EndTime", "from", "to"];

pub(crate) fn weighted<T: std::fmt::Debug + 'static>(
    choices: Vec<(u32, BoxedStrategy<T>)>,
) -> BoxedStrategy<T> {
    Union::new_weighted(choices).boxed()
}

fn one_of(choices: Vec<Gen>) -> Gen {
    Union::new(choices).boxed()
}

fn strings(values: Vec<String>) -> Gen {
    select(values).prop_map(Json::String).boxed()
}

pub(crate) struct Values<'a> {
    pub doc: &'a Json,
    pub pools: Arc<Pools>,
}

impl Values<'_> {
    /// Values of `schema` for a field called `name`; `edgy` lets defects in.
    pub(crate) fn of(&self, schema: &Json, name: &str, edgy: bool) -> Gen {
        let schema = resolve(self.doc, schema);
        let valid = self.valid(schema, name, edgy);
        if !edgy {
            return valid;
        }
        weighted(vec![(8, valid), (1, one_of(self.defects(schema, name)))])
    }

    fn valid(&self, schema: &Json, name: &str, edgy: bool) -> Gen {
        if let Some(c) = schema.get("const") {
            return Just(c.clone()).boxed();
        }
        if let Some(values) = schema["enum"].as_array() {
            return select(values.clone()).boxed();
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = schema[key].as_array() {
                let gens = branches.iter().map(|b| self.of(b, name, edgy)).collect();
                return one_of(gens);
            }
        }
        if schema.get("allOf").is_some() {
            return self.valid(&self.merged(schema), name, edgy);
        }
        if let Some(content) = schema.get("contentSchema") {
            // A string that holds JSON (metering's `Metering`, as the cloud API sends it).
            return self
                .of(content, name, edgy)
                .prop_map(|v| Json::String(v.to_string()))
                .boxed();
        }
        let types: Vec<&str> = match &schema["type"] {
            Json::String(t) => vec![t.as_str()],
            Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
            _ if schema.get("properties").is_some() => vec!["object"],
            _ => vec!["string", "integer", "boolean"],
        };
        let choices = types
            .iter()
            .map(|t| {
                let strategy = match *t {
                    "object" => self.object(schema, edgy),
                    "array" => self.array(schema, name, edgy),
                    "string" => self.string(schema, name),
                    "integer" => self.integer(schema, name),
                    "number" => numbers(),
                    "boolean" => any::<bool>().prop_map(Json::Bool).boxed(),
                    _ => Just(Json::Null).boxed(),
                };
                (if *t == "null" { 1 } else { 3 }, strategy)
            })
            .collect();
        weighted(choices)
    }

    /// An `allOf` as one schema: the parts' properties and required fields together.
    fn merged(&self, schema: &Json) -> Json {
        let mut merged = json!({"type": "object", "properties": {}, "required": []});
        for part in schema["allOf"].as_array().into_iter().flatten() {
            let part = resolve(self.doc, part);
            let part = if part.get("allOf").is_some() {
                self.merged(part)
            } else {
                part.clone()
            };
            if let Some(props) = part["properties"].as_object() {
                for (k, v) in props {
                    merged["properties"][k] = v.clone();
                }
            }
            for r in part["required"].as_array().into_iter().flatten() {
                merged["required"]
                    .as_array_mut()
                    .expect("a list")
                    .push(r.clone());
            }
            if part["additionalProperties"] == false {
                merged["additionalProperties"] = json!(false);
            }
        }
        merged
    }

    fn object(&self, schema: &Json, edgy: bool) -> Gen {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        let fields: Vec<BoxedStrategy<Option<(String, Json)>>> = schema["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, s)| {
                let key = name.clone();
                let value = self.of(s, name, edgy).prop_map(move |v| (key.clone(), v));
                if required.contains(&name.as_str()) {
                    value.prop_map(Some).boxed()
                } else {
                    proptest::option::of(value).boxed()
                }
            })
            .collect();
        // A usage window: half the time one that ends a plausible while after it starts.
        let lengths = select(vec![
            None,
            Some(1800),
            Some(3600),
            Some(301),
            Some(300),
            Some(0),
        ]);
        (fields, lengths)
            .prop_map(|(fields, length): (Vec<_>, Option<i64>)| {
                let mut object: Map<String, Json> = fields.into_iter().flatten().collect();
                if let (Some(start), Some(length)) =
                    (object.get("StartTime").and_then(Json::as_i64), length)
                    && object.contains_key("EndTime")
                {
                    object.insert("EndTime".into(), json!(start.saturating_add(length)));
                }
                Json::Object(object)
            })
            .boxed()
    }

    fn array(&self, schema: &Json, name: &str, edgy: bool) -> Gen {
        let min = bound(schema, "minItems").unwrap_or(0);
        let max = bound(schema, "maxItems").unwrap_or(min + 3).min(min + 3);
        let items = self.of(&schema["items"], name, edgy);
        let unique = schema["uniqueItems"] == true;
        proptest::collection::vec(items, min..=max)
            .prop_map(move |mut list| {
                if unique {
                    let mut seen = Vec::new();
                    list.retain(|v| {
                        let fresh = !seen.contains(v);
                        seen.push(v.clone());
                        fresh
                    });
                }
                Json::Array(list)
            })
            .boxed()
    }

    fn string(&self, schema: &Json, name: &str) -> Gen {
        let own = match schema["format"].as_str() {
            Some("date-time") => self.instants(name),
            Some("uri") => strings(vec![
                "https://example.com/stories/1".into(),
                "http://a.example/b?c=d".into(),
            ]),
            _ => self.text(schema),
        };
        match pool_for(name).map(|p| self.pools.get(p)) {
            Some(pool) if !pool.is_empty() => weighted(vec![(3, strings(pool.to_vec())), (1, own)]),
            _ => own,
        }
    }

    fn text(&self, schema: &Json) -> Gen {
        let min = bound(schema, "minLength").unwrap_or(0);
        let max = bound(schema, "maxLength").unwrap_or(min + 40).min(min + 40);
        let mut choices = vec![(3, plain_text(min, max)), (1, any_text(min, max))];
        if let Some(pattern) = schema["pattern"].as_str() {
            // The generator takes no anchors; the pattern's language is what they enclose.
            let body = pattern.trim_start_matches('^').trim_end_matches('$');
            if let Ok(matching) = proptest::string::string_regex(body) {
                choices = vec![
                    (6, matching.prop_map(Json::String).boxed()),
                    (1, plain_text(min, max)),
                ];
            }
        }
        if let Some(examples) = schema["examples"].as_array() {
            choices.push((2, select(examples.clone()).boxed()));
        }
        weighted(choices)
    }

    fn integer(&self, schema: &Json, name: &str) -> Gen {
        let min = schema["minimum"].as_i64().unwrap_or(-5);
        let max = schema["maximum"]
            .as_i64()
            .unwrap_or(1000)
            .min(min.saturating_add(1000));
        let mut choices = vec![
            (3, (min..=max).prop_map(Json::from).boxed()),
            (1, select(vec![json!(min), json!(max)]).boxed()),
        ];
        if UNIX_NAMES.contains(&name) {
            let now = self
                .pools
                .now
                .duration_trunc(Duration::hours(1))
                .expect("an hour");
            let near = (-36i64..=36).prop_map(move |k| json!(now.timestamp() + k * 300));
            choices.push((6, near.boxed()));
        }
        weighted(choices)
    }

    /// RFC 3339 instants: period starts around now (in UTC and other offsets), any second
    /// around now, and — where they date neither a run nor an order — the far past and future.
    fn instants(&self, name: &str) -> Gen {
        let now = self.pools.now;
        let hour = now.duration_trunc(Duration::hours(1)).expect("an hour");
        // The last hours most: the periods that still take usage and have not been billed.
        let hours = prop_oneof![3 => -3i64..=1, 1 => -48i64..=2];
        let starts = (hours, select(vec!["Z", "+08:00", "-05:00"])).prop_map(move |(k, offset)| {
            let t = hour + Duration::hours(k);
            Json::String(in_offset(t, offset))
        });
        let seconds = (-172_800i64..=7_200).prop_map(move |s| {
            Json::String((now + Duration::seconds(s)).to_rfc3339_opts(SecondsFormat::AutoSi, true))
        });
        let mut choices = vec![(4, starts.boxed()), (2, seconds.boxed())];
        if !CLOCK_NAMES.contains(&name) {
            let far = [
                "0001-01-01T00:00:00Z",
                "1970-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "2026-06-30T23:59:60Z",
                "2026-03-27T08:00:00.123456789Z",
                "2026-03-27T23:00:00+14:00",
            ];
            choices.push((1, strings(far.map(String::from).to_vec())));
        }
        weighted(choices)
    }

    /// Values a field of `schema` must refuse (or, at the bounds, just accept).
    fn defects(&self, schema: &Json, name: &str) -> Vec<Gen> {
        let mut out: Vec<Json> = vec![Json::Null];
        let types: Vec<&str> = match &schema["type"] {
            Json::String(t) => vec![t.as_str()],
            Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        };
        let mut gens: Vec<Gen> = Vec::new();
        if types.contains(&"string")
            || schema.get("enum").is_some()
            || schema.get("const").is_some()
        {
            out.extend([json!(7), json!(true), json!(["x"]), json!(""), json!("   ")]);
            out.extend([json!("\u{0}"), json!("NOT_A_VALUE"), json!("é".repeat(40))]);
            if let Some(max) = bound(schema, "maxLength") {
                out.push(json!("x".repeat(max)));
                out.push(json!("é".repeat(max)));
                out.push(json!("x".repeat((max + 1).min(HUGE_TEXT))));
            } else {
                out.push(json!("x".repeat(HUGE_TEXT)));
            }
            if let Some(min) = bound(schema, "minLength").filter(|m| *m > 1) {
                out.push(json!("x".repeat(min - 1)));
            }
            if schema["format"] == "date-time" {
                out.extend(
                    ["2026-13-01T00:00:00Z", "yesterday", "2026-03-27 08:00:00"].map(Json::from),
                );
                out.extend([json!("2026-03-27T08:00:00"), json!(1_774_598_400)]);
            }
        }
        if types.contains(&"integer") || types.contains(&"number") {
            out.extend([json!("12"), json!(-1), json!(i64::MIN), json!(u64::MAX)]);
            for literal in ["1.5", "-0", "1e300", "0.000000001"] {
                out.push(serde_json::from_str(literal).expect("a JSON number"));
            }
            if let Some(min) = schema["minimum"].as_i64() {
                out.push(json!(min.saturating_sub(1)));
            }
            if let Some(max) = schema["maximum"].as_u64() {
                out.push(json!(max.saturating_add(1)));
            }
        }
        if types.contains(&"array") {
            out.extend([json!({}), json!("[]"), json!([null])]);
            let items = self.of(&schema["items"], name, false);
            let max = bound(schema, "maxItems").unwrap_or(HUGE_LIST - 1);
            let long = max.saturating_add(1).min(HUGE_LIST);
            gens.push(
                proptest::collection::vec(items.clone(), long)
                    .prop_map(Json::Array)
                    .boxed(),
            );
            gens.push(items.prop_map(|v| json!([v.clone(), v])).boxed());
            if let Some(min) = bound(schema, "minItems").filter(|m| *m > 0) {
                let short =
                    proptest::collection::vec(self.of(&schema["items"], name, false), min - 1);
                gens.push(short.prop_map(Json::Array).boxed());
            }
        }
        if types.contains(&"object") || schema.get("properties").is_some() {
            out.extend([json!([]), json!("{}")]);
            let valid = self.valid(schema, name, false);
            let required: Vec<String> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(String::from))
                .collect();
            if !required.is_empty() {
                let dropped = (valid.clone(), select(required)).prop_map(|(mut v, field)| {
                    v.as_object_mut().map(|o| o.remove(&field));
                    v
                });
                gens.push(dropped.boxed());
            }
            gens.push(
                valid
                    .prop_map(|mut v| {
                        v.as_object_mut()
                            .map(|o| o.insert("unknown_field".into(), json!(1)));
                        v
                    })
                    .boxed(),
            );
        }
        gens.push(select(out).boxed());
        gens
    }
}

fn bound(schema: &Json, key: &str) -> Option<usize> {
    schema[key].as_u64().and_then(|n| usize::try_from(n).ok())
}

fn in_offset(t: DateTime<Utc>, offset: &str) -> String {
    let zone = chrono::FixedOffset::east_opt(match offset {
        "+08:00" => 8 * 3600,
        "-05:00" => -5 * 3600,
        _ => 0,
    })
    .expect("an offset");
    if offset == "Z" {
        t.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        t.with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }
}

/// Decimal inputs as JSON numbers: integers and exact short decimals.
fn numbers() -> Gen {
    let literals = ["0", "0.5", "1.25", "100", "0.00000001", "12345.6789"];
    let parsed: Vec<Json> = literals
        .iter()
        .map(|l| serde_json::from_str(l).expect("a JSON number"))
        .collect();
    weighted(vec![
        (1, select(parsed).boxed()),
        (1, (0u32..10_000).prop_map(Json::from).boxed()),
    ])
}

/// Text of `min..=max` characters as people write it: letters, digits, a little punctuation.
fn plain_text(min: usize, max: usize) -> Gen {
    let chars = prop_oneof![
        6 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        2 => proptest::char::range('0', '9'),
        1 => select(vec![' ', '-', '.', '_']),
    ];
    proptest::collection::vec(chars, min..=max.max(min))
        .prop_map(|cs| {
            let text: String = cs.into_iter().collect();
            // Whitespace-only text counts as empty: start with a letter, as people do.
            Json::String(match text.strip_prefix(' ') {
                Some(rest) => format!("a{rest}"),
                None => text,
            })
        })
        .boxed()
}

/// Text of `min..=max` characters of any kind: other scripts, emoji, controls, combining marks.
fn any_text(min: usize, max: usize) -> Gen {
    proptest::collection::vec(any::<char>(), min..=max.max(min))
        .prop_map(|cs| Json::String(cs.into_iter().collect()))
        .boxed()
}
