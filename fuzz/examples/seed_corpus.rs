//! Writes the seed corpus: valid inputs of every shape each decoder accepts, so the fuzzer
//! starts from inside the formats rather than from nothing.
//!
//! `cargo run --example seed_corpus [DIR]` (default `corpus`) writes `DIR/<target>/<name>`.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use fleet_domain::{Sample, SampleSource, Vin};
use fleet_ingest::decode::gbt32960::{
    Edition, Login, MotorReadings, Readings, encode_heartbeat, encode_login, encode_logout, encode_report,
};
use fleet_jt808 as jt808;

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "corpus".to_owned());
    let dir = Path::new(&dir);
    write(dir, "json_telemetry", &json_seeds())?;
    write(dir, "gbt32960_frame", &gbt_seeds())?;
    write(dir, "jt808_frame", &jt808_seeds())?;
    write(dir, "order_csv", &csv_seeds())?;
    Ok(())
}

fn write(dir: &Path, target: &str, seeds: &[(&str, Vec<u8>)]) -> std::io::Result<()> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed_{name}")), bytes)?;
    }
    println!("{}: {} seeds", dir.display(), seeds.len());
    Ok(())
}

fn json_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let every_field = r#"{"ts":"2025-03-01T08:30:00+08:00","lat":30.0123,"lon":122.1,"speed_kmh":42.5,"heading_deg":90,"soc_pct":77,"odometer_km":12345.6,"charging":false,"ignition":true,"battery_voltage_v":355.2,"battery_current_a":-12.5,"battery_temp_c":28,"range_km":210}"#;
    let minimal = r#"{"ts":1740789000123,"lat":30,"lon":122}"#;
    let nulls =
        r#"{"ts":"2025-03-01T00:30:00Z","lat":-33.9,"lon":-151.2,"speed_kmh":null,"charging":null,"firmware":"1.2"}"#;
    let batch =
        format!(r#"[{minimal},{every_field},{{"ts":1740789010000,"lat":30.1,"lon":122.1,"soc_pct":"80"}},7,null]"#);
    let out_of_range = r#"{"ts":0,"lat":95,"lon":122,"soc_pct":101,"speed_kmh":1e400}"#;
    let escapes =
        r#"{"ts":"2025-03-01T00:30:00.123456789-05:30","lat":3.0e1,"lon":1.22E2,"\u0074s":"x","k":"\ud83d\ude97\n"}"#;
    vec![
        ("every_field.json", every_field.into()),
        ("minimal.json", minimal.into()),
        ("nulls.json", nulls.into()),
        ("batch.json", batch.into_bytes()),
        ("out_of_range.json", out_of_range.into()),
        ("escapes.json", escapes.into()),
    ]
}

fn gbt_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let vin = Vin::parse("LSJA24U66NS000001").expect("a valid VIN");
    let time = NaiveDate::from_ymd_opt(2025, 11, 2).and_then(|d| d.and_hms_opt(14, 0, 0)).expect("a valid time");
    let ts = DateTime::<Utc>::from_timestamp(1_762_063_200, 0).expect("a valid instant");
    let mut full = Sample::at(vin.clone(), ts, 30.0165, 122.1068, SampleSource::Gbt2016);
    full.speed_kmh = Some(42.5);
    full.soc_pct = Some(77.0);
    full.odometer_km = Some(12_345.6);
    full.charging = Some(false);
    full.ignition = Some(true);
    full.battery_voltage_v = Some(355.2);
    full.battery_current_a = Some(-12.5);
    full.battery_temp_c = Some(28.0);
    // Everything optional unknown, parked and charging, south-west of the map datum's area.
    let mut sparse = Sample::at(vin.clone(), ts, -33.9, -151.2, SampleSource::Gbt2016);
    sparse.charging = Some(true);
    sparse.position_valid = false;
    // A small pack (the wire takes any count) and a moving motor; none of it for the sparse one.
    let readings = Readings {
        cell_mv: vec![Some(3_698), Some(3_702), None, Some(3_700)],
        probe_c: vec![Some(28), Some(26), None],
        motor: MotorReadings { status: 1, controller_temp_c: 45.0, speed_rpm: 3_400.0, torque_nm: 120.5, temp_c: 55.0 },
        gear: 0x20 | 14,
        insulation_kohm: 5_000,
        accelerator_pct: 18,
        brake_pct: 0,
    };
    let bare = Readings {
        cell_mv: Vec::new(),
        probe_c: Vec::new(),
        motor: MotorReadings { status: 3, controller_temp_c: 20.0, speed_rpm: 0.0, torque_nm: 0.0, temp_c: 20.0 },
        gear: 15,
        insulation_kohm: 5_000,
        accelerator_pct: 0,
        brake_pct: 0,
    };
    let login = Login {
        time,
        serial: 7,
        iccid: "89860012345678901234".to_owned(),
        subsystems: vec![vec![format!("BAT{vin}0001")]],
    };
    let mut seeds = Vec::new();
    for (edition, tag) in [(Edition::V2016, "2016"), (Edition::V2025, "2025")] {
        let name = |what: &str| -> &'static str { format!("{tag}_{what}.bin").leak() };
        seeds.push((name("report"), encode_report(edition, false, &full, &readings)));
        seeds.push((name("reissue"), encode_report(edition, true, &sparse, &bare)));
        seeds.push((name("login"), encode_login(edition, &vin, &login)));
        seeds.push((name("logout"), encode_logout(edition, &vin, time, 7)));
        seeds.push((name("heartbeat"), encode_heartbeat(edition, &vin)));
    }
    seeds
}

fn jt808_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let vin = Vin::parse("LSJA24U66NS000001").expect("a valid VIN");
    let ts = DateTime::<Utc>::from_timestamp(1_762_063_200, 0).expect("a valid instant");
    let mut moving = Sample::at(vin.clone(), ts, 30.0165, 122.1068, SampleSource::Jt808);
    moving.speed_kmh = Some(42.5);
    moving.heading_deg = Some(271.0);
    moving.odometer_km = Some(12_345.6);
    moving.ignition = Some(true);
    let mut location = jt808::sample_location(&moving);
    location.altitude_m = 12;
    location.extras = vec![
        jt808::Extra { id: 0x30, value: vec![0x1F] },
        jt808::Extra { id: 0x31, value: vec![0x0C] },
        jt808::Extra { id: 0x25, value: vec![0, 0, 0, 0x7e] },
    ];
    let mut no_fix = Sample::at(vin, ts, -33.9, -151.2, SampleSource::Jt808);
    no_fix.position_valid = false;
    let no_fix = jt808::sample_location(&no_fix);
    let register = jt808::Body::Register(jt808::Register {
        province: 33,
        city: 900,
        maker: "ZS001".into(),
        model: "EV-T1".into(),
        terminal_id: "T000001".into(),
        plate_colour: 1,
        plate: "浙L12345".into(),
    });
    let mut seeds = Vec::new();
    for (edition, tag) in [(jt808::Edition::V2013, "2013"), (jt808::Edition::V2019, "2019")] {
        let name = |what: &str| -> &'static str { format!("{tag}_{what}.bin").leak() };
        let frame = |id: u16, serial: u16, body: jt808::Body| {
            jt808::encode_message(&jt808::Header::new(edition, id, "13912345678", serial), &body).expect("encodes")
        };
        let auth = jt808::Authentication {
            code: b"AUTH1234".to_vec(),
            imei: Some("860000000000001".into()),
            software_version: Some("1.2.3".into()),
        };
        let batch = jt808::LocationBatch { kind: 1, locations: vec![location.clone(), no_fix.clone()] };
        let heartbeat = frame(jt808::id::HEARTBEAT, 3, jt808::Body::Heartbeat);
        seeds.push((name("register"), frame(jt808::id::REGISTER, 1, register.clone())));
        seeds.push((name("authentication"), frame(jt808::id::AUTHENTICATION, 2, jt808::Body::Authentication(auth))));
        seeds.push((name("heartbeat"), heartbeat.clone()));
        seeds.push((name("logout"), frame(jt808::id::LOGOUT, 4, jt808::Body::Logout)));
        seeds.push((name("location"), frame(jt808::id::LOCATION, 0x7e7d, jt808::Body::Location(location.clone()))));
        seeds.push((name("batch"), frame(jt808::id::LOCATION_BATCH, 6, jt808::Body::LocationBatch(batch))));
        let response = jt808::GeneralResponse { serial: 9, id: 0x8103, result: 0 };
        seeds.push((
            name("terminal_response"),
            frame(jt808::id::TERMINAL_RESPONSE, 7, jt808::Body::TerminalResponse(response)),
        ));
        seeds.push((name("other"), frame(0x0900, 8, jt808::Body::Other(vec![0xF0, 0x7d, 0x01]))));
        let mut part = jt808::Header::new(edition, jt808::id::LOCATION_BATCH, "13912345678", 9);
        part.subpackage = Some(jt808::Subpackage { total: 2, index: 1 });
        let fragment = jt808::encode_message(&part, &jt808::Body::Fragment(vec![0, 2, 1, 0, 28])).expect("encodes");
        seeds.push((name("fragment"), fragment));
        // A stream: junk, a frame, a stray delimiter, two frames back to back.
        let stream = [&b"junk"[..], &heartbeat, &[0x7e], &no_fix_frame(edition, &no_fix), &heartbeat].concat();
        seeds.push((name("stream"), stream));
    }
    seeds
}

fn no_fix_frame(edition: jt808::Edition, location: &jt808::Location) -> Vec<u8> {
    let header = jt808::Header::new(edition, jt808::id::LOCATION, "13912345678", 5);
    jt808::encode_message(&header, &jt808::Body::Location(location.clone())).expect("encodes")
}

fn csv_seeds() -> Vec<(&'static str, Vec<u8>)> {
    const HEADER: &str =
        "unit_id,passengers,pickup_name,pickup_lat,pickup_lon,dropoff_name,dropoff_lat,dropoff_lon,pickup_at,purpose\n";
    // The fuzzing entry point parses at 2026-01-01T00:00:00Z: these times are within reach.
    let good = format!(
        "{HEADER}u01,2,普陀山机场,29.9342,122.3617,朱家尖会议中心,29.9050,122.3900,,大会接站\n\
         u02,3,\"定海, 西门\",30.02,122.10,b,30.0,122.2,2026-01-15T08:00:00+08:00,p\n"
    );
    let bad_rows = format!(
        "{HEADER}u01,x,a,30,122,b,30,122,,p\n\
         u01,1,a,30,122,b,300,122,,p\n\
         u01,1,a,30,122,b,30,122,yesterday,p\n\
         \n\
         u01,1,a\n\
         u01,51,a,30,122,b,30,122,2030-01-01T08:00:00Z,p,extra\n"
    );
    let crlf_bom = format!("\u{feff}{}", good.replace('\n', "\r\n"));
    let quoted =
        format!("{HEADER} u03 , 1 ,\"say \"\"hi\"\"\",-90,-180,\"multi\nline\",90,180,2025-12-31T23:55:00Z,\"x\"\n");
    vec![
        ("good.csv", good.into_bytes()),
        ("bad_rows.csv", bad_rows.into_bytes()),
        ("crlf_bom.csv", crlf_bom.into_bytes()),
        ("quoted.csv", quoted.into_bytes()),
        ("wrong_header.csv", b"unit,passengers\nu01,1\n".to_vec()),
    ]
}
