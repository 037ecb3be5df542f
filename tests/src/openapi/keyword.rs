//! What each schema keyword demands of a value.

use serde_json::{Map, Value};

use super::{ANNOTATIONS, CHECKED, Ctx, OpenApi, known_format, pattern};

impl OpenApi {
    /// Checks `value` against one keyword (`key`, with argument `arg`) of `schema`.
    pub(super) fn keyword(
        &self,
        schema: &Map<String, Value>,
        key: &str,
        arg: &Value,
        value: &Value,
        ctx: Ctx<'_>,
        errors: &mut Vec<String>,
    ) {
        let at = ctx.at;
        macro_rules! fail {
            ($problem:expr) => {
                errors.push(format!("{at}: {}", $problem))
            };
        }
        match key {
            "$ref" => match self.target(arg) {
                // The fields of the target were counted with this schema's own.
                Ok(target) => self.check(target, value, ctx.same_value(true), errors),
                Err(e) => fail!(e),
            },
            "type" => {
                let allowed: Vec<&str> = match arg {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return fail!(format!("type {arg} is not a type")),
                };
                if !allowed.iter().any(|t| has_type(value, t)) {
                    fail!(format!("expected {}, found {}", allowed.join(" or "), type_of(value)));
                }
            }
            "enum" => {
                if !arg.as_array().is_some_and(|options| options.iter().any(|o| same(o, value))) {
                    fail!(format!("{value} is not one of {arg}"));
                }
            }
            "const" if !same(arg, value) => fail!(format!("{value} is not {arg}")),
            "properties" => {
                let (Some(props), Some(object)) = (arg.as_object(), value.as_object()) else { return };
                for (name, sub) in props {
                    if let Some(v) = object.get(name) {
                        self.check(sub, v, ctx.child(&format!("{at}.{name}")), errors);
                    }
                }
            }
            "required" => {
                let Some(object) = value.as_object() else { return };
                for name in arg.as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if !object.contains_key(name) {
                        fail!(format!("required field {name:?} is missing"));
                    }
                }
            }
            "additionalProperties" => {
                let Some(object) = value.as_object() else { return };
                let declared = schema.get("properties").and_then(Value::as_object);
                for (name, v) in object.iter().filter(|(n, _)| !declared.is_some_and(|d| d.contains_key(*n))) {
                    match arg {
                        Value::Bool(false) => fail!(format!("field {name:?} is not declared")),
                        sub => self.check(sub, v, ctx.child(&format!("{at}.{name}")), errors),
                    }
                }
            }
            "items" => {
                for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                    self.check(arg, item, ctx.child(&format!("{at}[{i}]")), errors);
                }
            }
            "minItems" | "maxItems" => {
                let (Some(items), Some(bound)) = (value.as_array(), arg.as_u64()) else { return };
                let n = items.len() as u64;
                if (key == "minItems" && n < bound) || (key == "maxItems" && n > bound) {
                    fail!(format!("{n} items, {key} is {bound}"));
                }
            }
            "oneOf" | "anyOf" | "allOf" => {
                let subs = arg.as_array().map(Vec::as_slice).unwrap_or_default();
                // allOf's members were counted with this schema's own fields; a oneOf or
                // anyOf alternative is judged on its own.
                let inner = ctx.same_value(key == "allOf");
                let results: Vec<Vec<String>> = subs.iter().map(|s| self.validate_at(s, value, inner)).collect();
                let passed = results.iter().filter(|r| r.is_empty()).count();
                match key {
                    "allOf" => errors.extend(results.into_iter().flatten()),
                    "anyOf" if passed == 0 => fail!(format!("matches none of anyOf: {}", results.concat().join("; "))),
                    "oneOf" if passed == 0 => fail!(format!("matches none of oneOf: {}", results.concat().join("; "))),
                    "oneOf" if passed > 1 => fail!(format!("matches {passed} of oneOf, exactly one allowed")),
                    _ => {}
                }
            }
            "not" if self.validate_at(arg, value, ctx.same_value(true)).is_empty() => {
                fail!("matches a schema it must not")
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                let (Some(v), Some(bound)) = (value.as_f64(), arg.as_f64()) else { return };
                let ok = match key {
                    "minimum" => v >= bound,
                    "maximum" => v <= bound,
                    "exclusiveMinimum" => v > bound,
                    _ => v < bound,
                };
                if !ok {
                    fail!(format!("{v} is outside {key} {bound}"));
                }
            }
            "minLength" | "maxLength" => {
                let (Some(s), Some(bound)) = (value.as_str(), arg.as_u64()) else { return };
                let n = s.chars().count() as u64;
                if (key == "minLength" && n < bound) || (key == "maxLength" && n > bound) {
                    fail!(format!("{s:?} has {n} characters, {key} is {bound}"));
                }
            }
            "pattern" => {
                let Some(s) = value.as_str() else { return };
                match arg.as_str().map_or(Err("not a string".into()), pattern::Pattern::parse) {
                    Ok(p) if p.matches(s) => {}
                    Ok(_) => fail!(format!("{s:?} does not match {arg}")),
                    Err(e) => fail!(format!("pattern {arg} cannot be checked: {e}")),
                }
            }
            "format" => {
                let Some(s) = value.as_str() else { return };
                match arg.as_str().unwrap_or("") {
                    "date-time" if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                        fail!(format!("{s:?} is not an RFC 3339 date-time"))
                    }
                    f if !known_format(f) => fail!(format!("format {f:?} cannot be checked")),
                    _ => {}
                }
            }
            k if CHECKED.contains(&k) || ANNOTATIONS.contains(&k) => {}
            other => fail!(format!("keyword {other:?} cannot be checked")),
        }
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}
