//! The columns a sample fills on PostgreSQL, in one order: the INSERT's column list, its
//! UNNEST arrays and COPY's rows are all built from [`PG_SAMPLE_COLUMNS`] and
//! [`push_sample`], so a new column is added in one place.

use chrono::{DateTime, Utc};
use fleet_domain::Sample;

/// A column's PostgreSQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PgType {
    Text,
    Float8,
    Bool,
    Timestamptz,
    Bytea,
}

impl PgType {
    /// The type's name in SQL (for UNNEST's array casts).
    pub(super) fn sql(self) -> &'static str {
        match self {
            Self::Text => "TEXT",
            Self::Float8 => "FLOAT8",
            Self::Bool => "BOOL",
            Self::Timestamptz => "TIMESTAMPTZ",
            Self::Bytea => "BYTEA",
        }
    }
}

/// Every column a stored sample fills on PostgreSQL, in the order [`push_sample`] gives the
/// values: those of `SAMPLE_COLUMNS` (shared with SQLite and the reads), then the time, the
/// GB/T 32960 frame and the time of receipt.
pub(super) const PG_SAMPLE_COLUMNS: [(&str, PgType); 19] = [
    ("vin", PgType::Text),
    ("lat", PgType::Float8),
    ("lon", PgType::Float8),
    ("position_valid", PgType::Bool),
    ("speed_kmh", PgType::Float8),
    ("heading_deg", PgType::Float8),
    ("soc_pct", PgType::Float8),
    ("odometer_km", PgType::Float8),
    ("charging", PgType::Bool),
    ("ignition", PgType::Bool),
    ("battery_voltage_v", PgType::Float8),
    ("battery_current_a", PgType::Float8),
    ("battery_temp_c", PgType::Float8),
    ("range_km", PgType::Float8),
    ("source", PgType::Text),
    ("clock_ahead", PgType::Bool),
    ("ts", PgType::Timestamptz),
    ("frame", PgType::Bytea),
    ("received_at", PgType::Timestamptz),
];

/// The column names of [`PG_SAMPLE_COLUMNS`], comma-separated.
pub(super) fn column_list() -> String {
    PG_SAMPLE_COLUMNS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// Where [`push_sample`] puts a sample's values: one call per column, in order.
pub(super) trait SampleValues<'a> {
    fn text(&mut self, v: &'a str);
    fn float(&mut self, v: Option<f64>);
    fn bool(&mut self, v: Option<bool>);
    fn time(&mut self, v: DateTime<Utc>);
    fn bytes(&mut self, v: Option<&'a [u8]>);
}

/// Gives `s`'s values, received at `received`, to `out` in the order of
/// [`PG_SAMPLE_COLUMNS`].
pub(super) fn push_sample<'a>(s: &'a Sample, received: DateTime<Utc>, out: &mut impl SampleValues<'a>) {
    out.text(s.vin.as_str());
    out.float(Some(s.lat));
    out.float(Some(s.lon));
    out.bool(Some(s.position_valid));
    out.float(s.speed_kmh);
    out.float(s.heading_deg);
    out.float(s.soc_pct);
    out.float(s.odometer_km);
    out.bool(s.charging);
    out.bool(s.ignition);
    out.float(s.battery_voltage_v);
    out.float(s.battery_current_a);
    out.float(s.battery_temp_c);
    out.float(s.range_km);
    out.text(s.source.as_str());
    out.bool(Some(s.clock_ahead));
    out.time(s.ts);
    out.bytes(s.frame.as_deref());
    out.time(received);
}

/// One array per column, filled sample by sample: the parameters of the UNNEST insert.
pub(super) struct Arrays<'a> {
    columns: Vec<Array<'a>>,
    next: usize,
}

/// The values of one column.
pub(super) enum Array<'a> {
    Text(Vec<&'a str>),
    Float(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Time(Vec<DateTime<Utc>>),
    Bytes(Vec<Option<&'a [u8]>>),
}

impl<'a> Arrays<'a> {
    /// The arrays of `samples`, received at `received`.
    pub(super) fn of(samples: &'a [Sample], received: DateTime<Utc>) -> Self {
        let n = samples.len();
        let columns = PG_SAMPLE_COLUMNS
            .iter()
            .map(|(_, t)| match t {
                PgType::Text => Array::Text(Vec::with_capacity(n)),
                PgType::Float8 => Array::Float(Vec::with_capacity(n)),
                PgType::Bool => Array::Bool(Vec::with_capacity(n)),
                PgType::Timestamptz => Array::Time(Vec::with_capacity(n)),
                PgType::Bytea => Array::Bytes(Vec::with_capacity(n)),
            })
            .collect();
        let mut arrays = Self { columns, next: 0 };
        for s in samples {
            push_sample(s, received, &mut arrays);
        }
        arrays
    }

    /// The arrays, in the order of [`PG_SAMPLE_COLUMNS`].
    pub(super) fn into_columns(self) -> Vec<Array<'a>> {
        self.columns
    }

    fn column(&mut self) -> &mut Array<'a> {
        let i = self.next;
        self.next = (i + 1) % PG_SAMPLE_COLUMNS.len();
        &mut self.columns[i]
    }
}

/// A value whose kind is not its column's: `push_sample` and `PG_SAMPLE_COLUMNS` disagree,
/// which the unit tests rule out.
fn mismatch(i: usize) -> ! {
    unreachable!("push_sample gives column {} a value of another type", PG_SAMPLE_COLUMNS[i].0)
}

impl<'a> SampleValues<'a> for Arrays<'a> {
    fn text(&mut self, v: &'a str) {
        let i = self.next;
        match self.column() {
            Array::Text(a) => a.push(v),
            _ => mismatch(i),
        }
    }

    fn float(&mut self, v: Option<f64>) {
        let i = self.next;
        match self.column() {
            Array::Float(a) => a.push(v),
            _ => mismatch(i),
        }
    }

    fn bool(&mut self, v: Option<bool>) {
        let i = self.next;
        match self.column() {
            Array::Bool(a) => a.push(v),
            _ => mismatch(i),
        }
    }

    fn time(&mut self, v: DateTime<Utc>) {
        let i = self.next;
        match self.column() {
            Array::Time(a) => a.push(v),
            _ => mismatch(i),
        }
    }

    fn bytes(&mut self, v: Option<&'a [u8]>) {
        let i = self.next;
        match self.column() {
            Array::Bytes(a) => a.push(v),
            _ => mismatch(i),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use fleet_domain::{SampleSource, Vin};

    use super::*;

    /// Records the type of each value given.
    struct Kinds(Vec<PgType>);

    impl<'a> SampleValues<'a> for Kinds {
        fn text(&mut self, _: &'a str) {
            self.0.push(PgType::Text);
        }
        fn float(&mut self, _: Option<f64>) {
            self.0.push(PgType::Float8);
        }
        fn bool(&mut self, _: Option<bool>) {
            self.0.push(PgType::Bool);
        }
        fn time(&mut self, _: DateTime<Utc>) {
            self.0.push(PgType::Timestamptz);
        }
        fn bytes(&mut self, _: Option<&'a [u8]>) {
            self.0.push(PgType::Bytea);
        }
    }

    fn sample() -> Sample {
        let vin = Vin::parse("LSJA24U66NS000001").unwrap();
        Sample::at(vin, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(), 30.0, 122.1, SampleSource::Json)
    }

    #[test]
    fn a_sample_gives_one_value_of_its_columns_type_to_each_column_in_order() {
        let s = sample();
        let mut kinds = Kinds(Vec::new());
        push_sample(&s, Utc::now(), &mut kinds);
        let declared: Vec<PgType> = PG_SAMPLE_COLUMNS.iter().map(|(_, t)| *t).collect();
        assert_eq!(kinds.0, declared);
    }

    #[test]
    fn the_columns_begin_with_those_sqlite_and_the_reads_share() {
        let shared: Vec<&str> = super::super::SAMPLE_COLUMNS.split(", ").collect();
        let names: Vec<&str> = PG_SAMPLE_COLUMNS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names[..shared.len()], shared[..]);
        assert_eq!(names[shared.len()..], ["ts", "frame", "received_at"]);
    }

    #[test]
    fn the_unnest_arrays_hold_one_value_per_sample_in_each_column() {
        let (a, mut b) = (sample(), sample());
        b.soc_pct = Some(70.5);
        let samples = [a, b];
        let columns = Arrays::of(&samples, Utc::now()).into_columns();
        assert_eq!(columns.len(), PG_SAMPLE_COLUMNS.len());
        for (column, (name, _)) in columns.iter().zip(PG_SAMPLE_COLUMNS) {
            let len = match column {
                Array::Text(v) => v.len(),
                Array::Float(v) => v.len(),
                Array::Bool(v) => v.len(),
                Array::Time(v) => v.len(),
                Array::Bytes(v) => v.len(),
            };
            assert_eq!(len, 2, "{name}");
        }
        assert!(matches!(&columns[6], Array::Float(soc) if soc[..] == [None, Some(70.5)]));
    }
}
