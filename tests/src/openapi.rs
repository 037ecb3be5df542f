//! The served OpenAPI 3.1 document as a checker of real traffic: finds an operation's request
//! and response schemas (per status code, following `$ref`s to components) and validates JSON
//! bodies against them with a small JSON Schema validator.
//!
//! The validator knows the keywords the document uses (`type` with its array form for
//! nullable values, `enum`, `const`, `properties`, `required`, `additionalProperties`,
//! `items`, `oneOf`/`anyOf`/`allOf`/`not`, numeric and length bounds, `pattern`, `format`
//! `date-time`) and treats annotations (`description`, `example`…) as such. A keyword it does
//! not know is reported as an error rather than skipped, so a schema it cannot check never
//! passes silently; [`OpenApi::unsupported`] lists them for the whole document.
//!
//! Bodies of real traffic are checked strictly: an object field that its schema does not
//! declare (in `properties`, its `$ref`s and `allOf` members) is an error unless the schema
//! says `additionalProperties`, so the document cannot fall behind what the server sends.

mod keyword;
mod pattern;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use serde_json::Value;

/// Keywords that only describe: they never make a value invalid.
const ANNOTATIONS: [&str; 11] = [
    "description",
    "example",
    "examples",
    "default",
    "title",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "$comment",
];

/// Keywords the validator checks.
const CHECKED: [&str; 20] = [
    "$ref",
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
];

/// Checked too, by their own code paths.
const CHECKED_MORE: [&str; 2] = ["pattern", "format"];

/// The document and what it says about operations.
#[derive(Debug, Clone)]
pub struct OpenApi {
    doc: Value,
}

impl OpenApi {
    pub fn new(doc: Value) -> Self {
        Self { doc }
    }

    /// The operation of `method` (any case) on the path template `path` (`/api/v1/orders/{id}`).
    pub fn operation(&self, method: &str, path: &str) -> Result<&Value, String> {
        self.doc["paths"]
            .get(path)
            .and_then(|item| item.get(method.to_ascii_lowercase()))
            .ok_or_else(|| format!("{method} {path} is not in the document"))
    }

    /// Every `(method, path template)` of the document.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                if ["get", "put", "post", "delete", "patch", "head", "options"].contains(&method.as_str()) {
                    out.push((method.clone(), path.clone()));
                }
            }
        }
        out
    }

    /// The JSON schema of the operation's request body.
    pub fn request_schema(&self, method: &str, path: &str) -> Result<&Value, String> {
        let body = self.resolve(self.operation(method, path)?.get("requestBody").unwrap_or(&Value::Null))?;
        body.pointer("/content/application~1json/schema")
            .ok_or_else(|| format!("{method} {path} declares no JSON request body"))
    }

    /// The declared response for `status` (or the operation's `default`), `$ref` followed.
    pub fn response(&self, method: &str, path: &str, status: u16) -> Result<&Value, String> {
        let responses = &self.operation(method, path)?["responses"];
        let declared = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .ok_or_else(|| format!("{method} {path} declares no response {status}"))?;
        self.resolve(declared)
    }

    /// The JSON schema of the response for `status`; `None` when it declares no JSON body.
    pub fn response_schema(&self, method: &str, path: &str, status: u16) -> Result<Option<&Value>, String> {
        Ok(self.response(method, path, status)?.pointer("/content/application~1json/schema"))
    }

    /// Checks a request body sent to the operation; the errors, if any, in one message.
    pub fn check_request(&self, method: &str, path: &str, body: &Value) -> Result<(), String> {
        let schema = self.request_schema(method, path)?;
        joined(&format!("request of {method} {path}"), self.validate_strict(schema, body))
    }

    /// Checks an answer: its status must be declared, and a JSON body (`Some`) must match the
    /// declared schema; a body-less answer (`None`) must be declared without a JSON body.
    pub fn check_response(&self, method: &str, path: &str, status: u16, body: Option<&Value>) -> Result<(), String> {
        let schema = self.response_schema(method, path, status)?;
        match (schema, body) {
            (Some(schema), Some(body)) => {
                joined(&format!("answer {status} of {method} {path}"), self.validate_strict(schema, body))
            }
            (None, None) => Ok(()),
            (Some(_), None) => Err(format!("answer {status} of {method} {path}: declared JSON, none sent")),
            (None, Some(_)) => Err(format!("answer {status} of {method} {path}: JSON sent, none declared")),
        }
    }

    /// The named component schema (`#/components/schemas/{name}`).
    pub fn schema(&self, name: &str) -> Result<&Value, String> {
        self.doc["components"]["schemas"].get(name).ok_or_else(|| format!("no schema {name}"))
    }

    /// Every way `value` fails `schema`, each as `path: problem` (empty when it passes).
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, Ctx { at: "$", strict: false, skip_here: false, depth: 0 }, &mut errors);
        errors
    }

    /// [`Self::validate`], and an object field the schema does not declare is an error too
    /// (unless the schema allows `additionalProperties`).
    pub fn validate_strict(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, Ctx { at: "$", strict: true, skip_here: false, depth: 0 }, &mut errors);
        errors
    }

    /// Everything in the document's schemas the validator cannot check: unknown keywords,
    /// unsupported patterns and formats, `$ref`s that do not resolve.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut schemas = Vec::new();
        collect_schemas(&self.doc, "#", &mut schemas);
        for (at, schema) in schemas {
            let Some(map) = schema.as_object() else {
                if !schema.is_boolean() {
                    out.push(format!("{at}: a schema must be an object or a boolean"));
                }
                continue;
            };
            for (key, v) in map {
                match key.as_str() {
                    "$ref" => {
                        if let Err(e) = self.target(v) {
                            out.push(format!("{at}: {e}"));
                        }
                    }
                    "pattern" => {
                        if let Err(e) = v.as_str().map_or(Err("not a string".into()), pattern::Pattern::parse) {
                            out.push(format!("{at}: pattern {v}: {e}"));
                        }
                    }
                    "format" if !known_format(v.as_str().unwrap_or("")) => out.push(format!("{at}: format {v}")),
                    k if CHECKED.contains(&k) || CHECKED_MORE.contains(&k) || ANNOTATIONS.contains(&k) => {}
                    other => out.push(format!("{at}: keyword {other:?}")),
                }
            }
        }
        out
    }

    /// A `$ref`'s target inside the document (`#/…`, JSON pointer).
    fn target(&self, reference: &Value) -> Result<&Value, String> {
        let r = reference.as_str().ok_or("a $ref must be a string")?;
        let pointer = r.strip_prefix('#').ok_or_else(|| format!("$ref {r} is not local to the document"))?;
        self.doc.pointer(pointer).ok_or_else(|| format!("$ref {r} does not resolve"))
    }

    /// An object that may be a `$ref` (a response, a request body), followed.
    fn resolve<'a>(&'a self, mut v: &'a Value) -> Result<&'a Value, String> {
        for _ in 0..16 {
            match v.get("$ref") {
                Some(r) => v = self.target(r)?,
                None => return Ok(v),
            }
        }
        Err("a cycle of $refs".into())
    }

    fn check(&self, schema: &Value, value: &Value, ctx: Ctx<'_>, errors: &mut Vec<String>) {
        let Ctx { at, strict, skip_here, depth } = ctx;
        if depth > 64 {
            errors.push(format!("{at}: schemas nest too deep (a $ref cycle?)"));
            return;
        }
        let map = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return errors.push(format!("{at}: no value is allowed here")),
            Value::Object(map) => map,
            other => return errors.push(format!("{at}: the schema {other} is not a schema")),
        };
        if strict
            && !skip_here
            && let (Some(object), Some(declared)) = (value.as_object(), self.declared(schema, 0))
        {
            for name in object.keys().filter(|n| !declared.contains(*n)) {
                errors.push(format!("{at}: field {name:?} is not in the document"));
            }
        }
        for (key, arg) in map {
            self.keyword(map, key, arg, value, ctx, errors);
        }
    }

    /// The object fields a schema declares, over its `$ref`s and `allOf` members; `None` when
    /// it declares none or allows others (`additionalProperties`).
    fn declared(&self, schema: &Value, depth: usize) -> Option<BTreeSet<String>> {
        let map = schema.as_object()?;
        if depth > 16 || map.contains_key("additionalProperties") {
            return None;
        }
        let mut names: BTreeSet<String> =
            map.get("properties").and_then(Value::as_object).into_iter().flatten().map(|(n, _)| n.clone()).collect();
        let mut parts: Vec<&Value> = map.get("allOf").and_then(Value::as_array).into_iter().flatten().collect();
        if let Some(r) = map.get("$ref") {
            parts.push(self.target(r).ok()?);
        }
        for part in parts {
            let part_map = part.as_object()?;
            if part_map.contains_key("additionalProperties") {
                return None;
            }
            names.extend(self.declared(part, depth + 1).unwrap_or_default());
        }
        (!names.is_empty()).then_some(names)
    }

    fn validate_at(&self, schema: &Value, value: &Value, ctx: Ctx<'_>) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, ctx, &mut errors);
        errors
    }
}

/// Where a check is: the value's path, whether undeclared fields count (`strict`) and are
/// judged at this schema (not `skip_here`: an enclosing schema counted this one's fields),
/// and the nesting.
#[derive(Debug, Clone, Copy)]
struct Ctx<'a> {
    at: &'a str,
    strict: bool,
    skip_here: bool,
    depth: usize,
}

impl Ctx<'_> {
    /// The same value under another schema.
    fn same_value(self, skip_here: bool) -> Self {
        Self { skip_here, depth: self.depth + 1, ..self }
    }

    /// A value inside this one.
    fn child<'b>(self, at: &'b str) -> Ctx<'b> {
        Ctx { at, strict: self.strict, skip_here: false, depth: self.depth + 1 }
    }
}

/// Formats checked (`date-time`) or meaningless for JSON text (`binary`: a download).
fn known_format(f: &str) -> bool {
    matches!(f, "date-time" | "binary")
}

fn joined(what: &str, errors: Vec<String>) -> Result<(), String> {
    if errors.is_empty() { Ok(()) } else { Err(format!("{what}: {}", errors.join("; "))) }
}

/// Every schema of the document (components, parameters, bodies, responses, and the schemas
/// inside them), each with where it is.
fn collect_schemas<'a>(v: &'a Value, at: &str, out: &mut Vec<(String, &'a Value)>) {
    let Some(map) = v.as_object() else {
        for (i, item) in v.as_array().into_iter().flatten().enumerate() {
            collect_schemas(item, &format!("{at}/{i}"), out);
        }
        return;
    };
    for (key, child) in map {
        let here = format!("{at}/{key}");
        match key.as_str() {
            "schema" => walk_schema(child, &here, out),
            "schemas" if at == "#/components" => {
                for (name, s) in child.as_object().into_iter().flatten() {
                    walk_schema(s, &format!("{here}/{name}"), out);
                }
            }
            _ => collect_schemas(child, &here, out),
        }
    }
}

/// A schema and its subschemas.
fn walk_schema<'a>(s: &'a Value, at: &str, out: &mut Vec<(String, &'a Value)>) {
    out.push((at.to_owned(), s));
    let Some(map) = s.as_object() else { return };
    for (key, child) in map {
        let here = format!("{at}/{key}");
        match key.as_str() {
            "properties" => {
                for (name, p) in child.as_object().into_iter().flatten() {
                    walk_schema(p, &format!("{here}/{name}"), out);
                }
            }
            "items" | "additionalProperties" | "not" if child.is_object() => walk_schema(child, &here, out),
            "oneOf" | "anyOf" | "allOf" => {
                for (i, sub) in child.as_array().into_iter().flatten().enumerate() {
                    walk_schema(sub, &format!("{here}/{i}"), out);
                }
            }
            _ => {}
        }
    }
}
