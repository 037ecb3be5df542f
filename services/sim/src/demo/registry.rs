//! The demo registry: Zhoushan municipal units, their cars, drivers and users.

use fleet_domain::{NewDriver, NewUnit, NewUser, NewVehicle, Role};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::DEMO_PASSWORD;
use crate::make_vin;

/// Units: name, monthly energy budget (kWh), whether their orders are approved automatically.
const UNITS: &[(&str, f64, bool)] = &[
    ("舟山市人民政府办公室", 1_800.0, true),
    ("舟山市发展和改革委员会", 900.0, false),
    ("舟山市教育局", 1_000.0, false),
    ("舟山市科学技术局", 400.0, false),
    ("舟山市经济和信息化局", 600.0, false),
    ("舟山市公安局", 2_000.0, true),
    ("舟山市民政局", 700.0, false),
    ("舟山市司法局", 500.0, false),
    ("舟山市财政局", 600.0, false),
    ("舟山市人力资源和社会保障局", 500.0, false),
    ("舟山市自然资源和规划局", 1_200.0, false),
    ("舟山市生态环境局", 1_100.0, false),
    ("舟山市住房和城乡建设局", 1_200.0, false),
    ("舟山市交通运输局", 1_500.0, false),
    ("舟山市港航和口岸管理局", 1_300.0, false),
    ("舟山市海洋与渔业局", 1_400.0, false),
    ("舟山市商务局", 500.0, false),
    ("舟山市文化和广电旅游体育局", 800.0, false),
    ("舟山市卫生健康委员会", 1_600.0, true),
    ("舟山市应急管理局", 1_500.0, true),
    ("舟山市审计局", 400.0, false),
    ("舟山市市场监督管理局", 900.0, false),
    ("舟山市统计局", 300.0, false),
    ("舟山市综合行政执法局", 1_300.0, false),
    ("舟山市机关事务管理局", 2_000.0, true),
    ("舟山市大数据发展管理局", 300.0, false),
];

/// A car model: manufacturer code and descriptor for the VIN, name, seats, usable battery
/// (kWh), typical consumption (kWh/100 km), and how many the demo fleet has.
struct Model {
    wmi: &'static str,
    vds: &'static str,
    name: &'static str,
    seats: i32,
    battery_kwh: f64,
    consumption: f64,
    count: usize,
}

const fn model(
    wmi: &'static str,
    vds: &'static str,
    name: &'static str,
    seats: i32,
    battery_kwh: f64,
    consumption: f64,
    count: usize,
) -> Model {
    Model { wmi, vds, name, seats, battery_kwh, consumption, count }
}

const MODELS: &[Model] = &[
    model("LGX", "CE4CB", "BYD Han EV", 5, 76.9, 15.5, 10),
    model("LGX", "C74C1", "BYD Qin PLUS EV", 5, 57.6, 13.0, 10),
    model("LMG", "AB1S5", "GAC Aion S Plus", 5, 69.9, 13.5, 8),
    model("LGX", "CH4C5", "BYD Seal", 5, 82.5, 14.5, 6),
    model("LGX", "CB6D9", "Denza D9 EV", 7, 103.0, 19.5, 5),
    model("LZW", "ACAG5", "Wuling Bingo", 4, 31.9, 11.0, 5),
    model("LJ1", "EEA2F", "NIO ES6", 5, 100.0, 18.0, 4),
    model("L6T", "79R4Z", "Zeekr 009", 7, 116.0, 21.0, 4),
    model("LGX", "C16A3", "BYD Dolphin", 5, 44.9, 12.0, 4),
    model("LSK", "G8M41", "Maxus MIFA 9", 7, 90.0, 19.0, 2),
    model("LGX", "C75K2", "BYD Song PLUS EV", 5, 71.8, 16.0, 2),
];

/// Every fourth car belongs to the shared pool (no unit).
const POOL_EVERY: usize = 4;
/// Fixed seed of the demo registry's random choices (plates, phone numbers).
const REGISTRY_SEED: u64 = 0x5A0C_5A0C;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴", "徐", "孙", "胡", "朱", "林", "何", "郭", "虞", "邬",
    "应", "翁", "乐", "贺", "俞", "金", "邵", "傅", "袁", "夏", "毛", "鲍",
];
const GIVEN_NAMES: &[&str] = &[
    "建国", "志强", "海波", "伟", "军", "国平", "晓东", "立新", "建华", "明", "杰", "海军", "永康", "平", "文斌",
    "伟民", "红", "丽", "芳", "静", "雪梅", "敏", "海燕", "晓燕", "斌", "浩", "磊", "勇", "涛", "鹏", "峰", "强",
    "海峰", "国庆", "亚军", "春雷", "志华", "新民", "跃进", "振宇", "佳", "琳", "洁", "慧", "波", "刚", "宁", "斐",
];
/// Mobile prefixes common in Zhejiang.
const PHONE_PREFIXES: &[&str] = &["138", "139", "137", "135", "136", "150", "158", "159", "188", "198"];
/// Letters allowed on plates (no I or O).
const PLATE_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

pub fn units() -> Vec<NewUnit> {
    UNITS
        .iter()
        .enumerate()
        .map(|(i, &(name, budget, auto))| NewUnit {
            id: Some(format!("u{:02}", i + 1)),
            name: name.to_owned(),
            monthly_energy_budget_kwh: budget,
            auto_approve: auto,
            contact_email: Some(format!("unit{:02}@zhoushan.example", i + 1)),
        })
        .collect()
}

/// Days between a demo car's dates, spread so that a few of sixty fall due within a month.
const FILE_SPREAD_DAYS: usize = 365;

/// The file of the demo's car number `i`, as of `today`: insurance and inspection dates spread
/// over the coming year, a service every 12 months with the last one some months ago; a few
/// of sixty cars have something due within 30 days, and one is in the workshop. (Services are
/// due by months only here: the live simulator starts each car with an odometer of its own,
/// not the one its history ended on, so an interval by km would fall due at random.)
pub fn vehicle_file(i: usize, today: chrono::NaiveDate) -> fleet_domain::VehicleFile {
    let days = |k: usize| chrono::TimeDelta::days(i64::try_from(k % FILE_SPREAD_DAYS).unwrap_or(0));
    fleet_domain::VehicleFile {
        insurance_until: Some(today + days(i * 53 + 11)),
        inspection_due: Some(today + days(i * 89 + 40)),
        maintenance_every_km: None,
        maintenance_every_months: Some(12),
        last_maintenance_on: Some(today - days(i * 37 + 20)),
        last_maintenance_km: None,
        in_maintenance: i == 7,
    }
}

pub fn vehicles(units: &[NewUnit]) -> Vec<NewVehicle> {
    let mut rng = StdRng::seed_from_u64(REGISTRY_SEED);
    let mut plates = std::collections::HashSet::new();
    let mut assigned = 0;
    MODELS
        .iter()
        .flat_map(|m| (0..m.count).map(move |k| (m, k)))
        .enumerate()
        .map(|(i, (m, k))| {
            let unit_id = if i % POOL_EVERY == POOL_EVERY - 1 || units.is_empty() {
                None
            } else {
                assigned += 1;
                units[(assigned - 1) % units.len()].id.clone()
            };
            // Registered in 2024 (model year R) or 2025 (S); serials spread like a factory's.
            let year = if i % 3 == 0 { 'R' } else { 'S' };
            let serial = 100_000 + (i as u32 + 1) * 7_919 + k as u32;
            let vin = make_vin(m.wmi, m.vds, year, 'Z', serial).expect("demo VIN parts are well-formed");
            let plate = loop {
                let p = green_plate(&mut rng);
                if plates.insert(p.clone()) {
                    break p;
                }
            };
            NewVehicle {
                vin: vin.to_string(),
                plate,
                model: m.name.to_owned(),
                seats: m.seats,
                battery_kwh: m.battery_kwh,
                consumption_kwh_per_100km: m.consumption,
                unit_id,
                // Every official car carries a Beidou terminal; some report through it.
                terminal_phone: Some(crate::sim_phone(i)),
                // Filled in with today's dates when the demo is loaded (`vehicle_file`).
                file: fleet_domain::VehicleFile::default(),
            }
        })
        .collect()
}

/// A Zhoushan new-energy plate: 浙L, then D (pure electric), then five characters, the
/// first sometimes a letter, e.g. 浙LD12345 or 浙LDA7351.
fn green_plate(rng: &mut StdRng) -> String {
    let first = if rng.random_bool(0.3) {
        PLATE_LETTERS[rng.random_range(0..PLATE_LETTERS.len())] as char
    } else {
        char::from(b'0' + rng.random_range(0..10u8))
    };
    format!("浙LD{first}{:04}", rng.random_range(0..10_000))
}

/// One driver per car, bound to it.
pub fn drivers(vehicles: &[NewVehicle]) -> Vec<NewDriver> {
    let mut rng = StdRng::seed_from_u64(REGISTRY_SEED + 1);
    let mut names = std::collections::HashSet::new();
    vehicles
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut k = i;
            let name = loop {
                let n = format!(
                    "{}{}",
                    SURNAMES[k % SURNAMES.len()],
                    GIVEN_NAMES[(k * 7 + k / SURNAMES.len()) % GIVEN_NAMES.len()]
                );
                if names.insert(n.clone()) {
                    break n;
                }
                k += 1;
            };
            let prefix = PHONE_PREFIXES[rng.random_range(0..PHONE_PREFIXES.len())];
            NewDriver {
                id: Some(format!("d{:02}", i + 1)),
                name,
                phone: format!("{prefix}{:08}", rng.random_range(58_000_000..58_100_000)),
                vehicle_vin: Some(v.vin.clone()),
            }
        })
        .collect()
}

/// `admin`, `dispatcher`, `auditor`, one `unitNN` per unit and one `driverNN` per driver.
pub fn users(units: &[NewUnit], drivers: &[NewDriver]) -> Vec<NewUser> {
    let user = |username: String, role, unit_id: Option<String>, driver_id: Option<String>| NewUser {
        username,
        password: DEMO_PASSWORD.to_owned(),
        role,
        unit_id,
        driver_id,
    };
    let mut users = vec![
        user("admin".into(), Role::Admin, None, None),
        user("dispatcher".into(), Role::Dispatcher, None, None),
        user("auditor".into(), Role::Auditor, None, None),
    ];
    users.extend(
        units.iter().enumerate().map(|(i, u)| user(format!("unit{:02}", i + 1), Role::Unit, u.id.clone(), None)),
    );
    users.extend(
        drivers.iter().enumerate().map(|(i, d)| user(format!("driver{:02}", i + 1), Role::Driver, None, d.id.clone())),
    );
    users
}

/// The demo's electricity tariff: time of use shaped like a Zhejiang commercial tariff
/// (valley at night and over midday, peak in the working morning and afternoon). The prices
/// are illustrative, not the grid company's current schedule.
pub fn tariff() -> fleet_domain::tariff::Tariff {
    let p = |from: &str, to: &str, yuan_per_kwh: f64| fleet_domain::tariff::TariffPeriod {
        from: from.to_owned(),
        to: to.to_owned(),
        yuan_per_kwh,
    };
    fleet_domain::tariff::Tariff {
        periods: vec![
            p("00:00", "08:00", 0.33),
            p("08:00", "11:00", 1.12),
            p("11:00", "13:00", 0.33),
            p("13:00", "17:00", 1.12),
            p("17:00", "22:00", 0.70),
            p("22:00", "24:00", 0.33),
        ],
    }
}

/// A month of the demo cars' other costs up to `today`: bridge tolls for about one car in
/// three, parking now and then, a repair or two. Deterministic.
pub fn costs(vehicles: &[NewVehicle], today: chrono::NaiveDate) -> Vec<fleet_domain::costs::NewCost> {
    use fleet_domain::costs::{CostKind, NewCost};
    let mut rng = StdRng::seed_from_u64(REGISTRY_SEED ^ 0xC057);
    let mut out = Vec::new();
    for v in vehicles {
        let n = rng.random_range(0..4);
        for _ in 0..n {
            let on = today - chrono::TimeDelta::days(rng.random_range(0..28));
            let (kind, amount_yuan, note) = match rng.random_range(0..10) {
                0..=4 => (CostKind::Toll, 35.0, "舟山跨海大桥通行费"),
                5..=7 => (CostKind::Parking, f64::from(rng.random_range(2..8_u32)) * 5.0, "停车费"),
                8 => (CostKind::Repair, f64::from(rng.random_range(2..20_u32)) * 50.0, "轮胎修补"),
                _ => (CostKind::Other, 60.0, "洗车"),
            };
            out.push(NewCost { vin: v.vin.clone(), on, kind, amount_yuan, note: note.to_owned() });
        }
    }
    out
}
