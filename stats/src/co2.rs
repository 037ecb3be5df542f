//! The CO₂ comparison of monthly statistics: what driving electric avoided against a
//! comparable petrol sedan, net of the grid's emissions.

use serde::Serialize;

/// Petrol a comparable official sedan burns, L/100 km (the baseline for CO₂ avoided).
pub const DEFAULT_PETROL_L_PER_100KM: f64 = 8.0;
/// CO₂ from burning a litre of petrol, kg (IPCC 2006 default for motor gasoline, ≈2.3).
pub const DEFAULT_PETROL_KG_CO2_PER_L: f64 = 2.3;
/// CO₂ per kWh of grid electricity, kg (China's national average grid emission factor for
/// 2022, 0.5703 tCO₂/MWh, published by the Ministry of Ecology and Environment in 2024).
pub const DEFAULT_GRID_KG_CO2_PER_KWH: f64 = 0.5703;

/// The factors of the CO₂ comparison.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Co2Factors {
    pub petrol_l_per_100km: f64,
    pub petrol_kg_co2_per_l: f64,
    pub grid_kg_co2_per_kwh: f64,
}

impl Default for Co2Factors {
    fn default() -> Self {
        Self {
            petrol_l_per_100km: DEFAULT_PETROL_L_PER_100KM,
            petrol_kg_co2_per_l: DEFAULT_PETROL_KG_CO2_PER_L,
            grid_kg_co2_per_kwh: DEFAULT_GRID_KG_CO2_PER_KWH,
        }
    }
}

impl Co2Factors {
    /// kg of CO₂ avoided by driving `km` on `kwh` instead of petrol.
    pub fn avoided_kg(&self, km: f64, kwh: f64) -> f64 {
        km * self.petrol_l_per_100km / 100.0 * self.petrol_kg_co2_per_l - kwh * self.grid_kg_co2_per_kwh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co2_avoided_is_petrol_burnt_minus_grid_emissions() {
        let f = Co2Factors::default();
        // 100 km: 8 L × 2.3 kg = 18.4 kg of petrol CO₂; 15 kWh × 0.5703 = 8.5545 kg.
        assert!((f.avoided_kg(100.0, 15.0) - (18.4 - 8.5545)).abs() < 1e-9);
    }
}
