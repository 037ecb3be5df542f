use serde_json::{Value, json};

use super::OpenApi;
use super::pattern::Pattern;

/// A small document in the served one's style: a component with required, nullable and enum
/// fields, a `$ref`'d response, a 204 without a body.
fn doc() -> OpenApi {
    OpenApi::new(json!({
        "openapi": "3.1.0",
        "paths": {
            "/things/{id}": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewThing"}}}},
                    "responses": {
                        "200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}}},
                        "204": {"description": "nothing"},
                        "404": {"$ref": "#/components/responses/NotFound"}
                    }
                }
            }
        },
        "components": {
            "responses": {
                "NotFound": {"description": "no", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"],
                        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}
                },
                "NewThing": {
                    "type": "object", "required": ["name"], "additionalProperties": false,
                    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 4, "description": "a name"},
                                   "count": {"type": "integer", "minimum": 1, "maximum": 50}}
                },
                "Thing": {
                    "type": "object", "required": ["id", "status", "vin", "at", "tags"],
                    "properties": {
                        "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"},
                        "status": {"type": "string", "enum": ["idle", "busy"]},
                        "vin": {"oneOf": [{"$ref": "#/components/schemas/Vin"}, {"type": "null"}]},
                        "at": {"type": ["string", "null"], "format": "date-time"},
                        "tags": {"type": "array", "items": {"type": "string"}},
                        "share": {"anyOf": [{"type": "number", "maximum": 1}, {"type": "null"}]},
                        "both": {"allOf": [{"type": "object", "required": ["a"]}, {"required": ["b"]}]}
                    }
                },
                "Vin": {"type": "string", "pattern": "^[A-HJ-NPR-Z0-9]{17}$"}
            }
        }
    }))
}

fn good_thing() -> Value {
    json!({"id": "o_1", "status": "idle", "vin": "LSJA24U66NS000001", "at": "2026-11-26T06:10:05Z", "tags": ["a"]})
}

fn errors_of(thing: Value) -> Vec<String> {
    let api = doc();
    api.validate(api.schema("Thing").unwrap(), &thing)
}

#[test]
fn a_body_that_matches_its_schema_passes() {
    assert_eq!(errors_of(good_thing()), Vec::<String>::new());
    let nulls = json!({"id": "x", "status": "busy", "vin": null, "at": null, "tags": [], "share": null});
    assert_eq!(errors_of(nulls), Vec::<String>::new());
    let api = doc();
    assert_eq!(api.check_response("POST", "/things/{id}", 200, Some(&good_thing())), Ok(()));
    assert_eq!(api.check_request("post", "/things/{id}", &json!({"name": "ab", "count": 3})), Ok(()));
}

#[test]
fn a_missing_required_field_or_a_wrong_type_is_refused() {
    let mut t = good_thing();
    t.as_object_mut().unwrap().remove("status");
    assert!(errors_of(t)[0].contains("\"status\" is missing"));
    let mut t = good_thing();
    t["tags"] = json!("a");
    assert_eq!(errors_of(t), ["$.tags: expected array, found string"]);
    let mut t = good_thing();
    t["tags"] = json!(["a", 5]);
    assert_eq!(errors_of(t), ["$.tags[1]: expected string, found number"]);
    // A nullable field is still typed.
    let mut t = good_thing();
    t["at"] = json!(12);
    assert_eq!(errors_of(t), ["$.at: expected string or null, found number"]);
}

#[test]
fn enums_patterns_formats_and_bounds_are_checked() {
    for (field, bad) in [
        ("status", json!("parked")),
        ("id", json!("has space")),
        ("id", json!("")),
        ("at", json!("yesterday")),
        ("at", json!("2026-11-26 06:10:05")),
        ("share", json!(1.5)),
    ] {
        let mut t = good_thing();
        t[field] = bad.clone();
        assert_eq!(errors_of(t).len(), 1, "{field} = {bad}");
    }
    let api = doc();
    let new = |body: Value| api.check_request("POST", "/things/{id}", &body);
    assert!(new(json!({"name": "abcde"})).is_err(), "maxLength");
    assert!(new(json!({"name": "ab", "count": 2.5})).is_err(), "an integer");
    assert!(new(json!({"name": "ab", "count": 2.0})).is_ok(), "2.0 is an integer value");
    assert!(new(json!({"name": "ab", "count": 51})).is_err(), "maximum");
    assert!(new(json!({"name": "ab", "extra": 1})).is_err(), "additionalProperties: false");
}

#[test]
fn one_of_any_of_and_all_of_follow_their_rules() {
    let mut t = good_thing();
    t["vin"] = json!("not a vin");
    assert!(errors_of(t)[0].contains("none of oneOf"));
    let mut t = good_thing();
    t["both"] = json!({"a": 1});
    assert_eq!(errors_of(t), ["$.both: required field \"b\" is missing"]);
    let mut t = good_thing();
    t["share"] = json!("half");
    assert!(errors_of(t)[0].contains("none of anyOf"));
    // Two alternatives that both match break oneOf.
    let api = doc();
    let schema = json!({"oneOf": [{"type": "string"}, {"type": ["string", "null"]}]});
    assert!(api.validate(&schema, &json!("x"))[0].contains("exactly one"));
}

#[test]
fn responses_are_found_by_status_through_refs_and_undeclared_ones_fail() {
    let api = doc();
    let not_found = json!({"error": {"code": "not_found", "message": "thing not found"}});
    assert_eq!(api.check_response("POST", "/things/{id}", 404, Some(&not_found)), Ok(()));
    assert!(api.check_response("POST", "/things/{id}", 404, Some(&json!({"error": "x"}))).is_err());
    assert_eq!(api.check_response("POST", "/things/{id}", 204, None), Ok(()));
    assert!(api.check_response("POST", "/things/{id}", 204, Some(&json!({}))).is_err(), "no body declared");
    assert!(api.check_response("POST", "/things/{id}", 200, None).is_err(), "a body declared");
    assert!(api.check_response("POST", "/things/{id}", 409, Some(&not_found)).unwrap_err().contains("no response 409"));
    assert!(api.check_response("GET", "/things/{id}", 200, None).unwrap_err().contains("not in the document"));
}

#[test]
fn what_the_validator_cannot_check_is_an_error_not_a_pass() {
    let api = doc();
    let unknown = json!({"type": "string", "nullable": true});
    assert_eq!(api.validate(&unknown, &json!("x")), ["$: keyword \"nullable\" cannot be checked"]);
    let group = json!({"pattern": "^(a|b)$"});
    assert!(api.validate(&group, &json!("a"))[0].contains("cannot be checked"));
    assert!(api.validate(&json!({"$ref": "#/components/schemas/Nothing"}), &json!(1))[0].contains("does not resolve"));
    let mut with_unknown = doc();
    with_unknown.doc["components"]["schemas"]["Vin"]["nullable"] = json!(true);
    assert_eq!(with_unknown.unsupported(), ["#/components/schemas/Vin: keyword \"nullable\""]);
    assert_eq!(doc().unsupported(), Vec::<String>::new());
}

#[test]
fn the_served_document_uses_only_what_the_validator_checks() {
    let served: Value = serde_json::from_str(include_str!("../../../web/src/openapi.json")).unwrap();
    assert_eq!(OpenApi::new(served).unsupported(), Vec::<String>::new());
}

#[test]
fn patterns_match_like_regular_expressions() {
    let vin = Pattern::parse("^[A-HJ-NPR-Z0-9]{17}$").unwrap();
    assert!(vin.matches("LSJA24U66NS000001"));
    assert!(!vin.matches("LSJA24U66NS00000I"), "no I");
    assert!(!vin.matches("LSJA24U66NS00000"), "16 characters");
    assert!(!vin.matches("LSJA24U66NS0000011"), "18 characters");
    let user = Pattern::parse("^[A-Za-z0-9._@-]{1,64}$").unwrap();
    assert!(user.matches("unit01@zs.gov") && !user.matches("a b") && !user.matches(""));
    let loose = Pattern::parse("b\\d+").unwrap();
    assert!(loose.matches("ab12c"), "unanchored: anywhere");
    assert!(!loose.matches("ab"));
    let opt = Pattern::parse("^x?y*\\.z$").unwrap();
    assert!(opt.matches(".z") && opt.matches("xyy.z") && !opt.matches("xxy.z") && !opt.matches("x-z"));
    for unsupported in ["^(a)$", "a|b", "[a-", "a{3,1}", "[z-a]"] {
        assert!(Pattern::parse(unsupported).is_err(), "{unsupported}");
    }
}

#[test]
fn strict_checks_refuse_fields_the_document_does_not_declare() {
    let api = doc();
    let mut t = good_thing();
    t["surprise"] = json!(1);
    assert_eq!(api.validate(api.schema("Thing").unwrap(), &t), Vec::<String>::new(), "plain JSON Schema allows it");
    assert_eq!(api.validate_strict(api.schema("Thing").unwrap(), &t), ["$: field \"surprise\" is not in the document"]);
    let err = api.check_response("POST", "/things/{id}", 200, Some(&t)).unwrap_err();
    assert!(err.contains("\"surprise\" is not in the document"), "{err}");
    // Nested objects too, and the fields of allOf members and $refs count as declared.
    let mut t = good_thing();
    t["both"] = json!({"a": 1, "b": 2, "c": 3});
    assert_eq!(api.validate_strict(api.schema("Thing").unwrap(), &t), Vec::<String>::new(), "{t}");
    let composed =
        json!({"allOf": [{"$ref": "#/components/schemas/Error"}, {"properties": {"extra": {"type": "integer"}}}]});
    let body = json!({"error": {"code": "x", "message": "y"}, "extra": 1});
    assert_eq!(api.validate_strict(&composed, &body), Vec::<String>::new());
    let mut body = body;
    body["error"]["hint"] = json!("z");
    assert_eq!(api.validate_strict(&composed, &body), ["$.error: field \"hint\" is not in the document"]);
    // A schema that allows other fields, or declares none, lets them through.
    let open = json!({"type": "object", "properties": {"a": {}}, "additionalProperties": true});
    assert_eq!(api.validate_strict(&open, &json!({"a": 1, "z": 2})), Vec::<String>::new());
    assert_eq!(api.validate_strict(&json!({"type": "object"}), &json!({"z": 2})), Vec::<String>::new());
}
