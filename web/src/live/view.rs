//! What one live-feed connection sees: the caller's vehicles (by role), narrowed by the
//! optional `unit_id` and `bbox` filters.

use fleet_domain::registry::validate_id;
use fleet_domain::{Role, User, Vin};

use super::socket::Utf8Bytes;
use super::{Changed, OrderFrame};
use crate::access::VehicleScope;
use crate::error::ApiError;

/// A bounding box in WGS-84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl BBox {
    /// Parses `minLon,minLat,maxLon,maxLat`.
    pub(crate) fn parse(s: &str) -> Result<Self, ApiError> {
        let bad =
            |why: &str| ApiError::BadRequest(format!("bbox must be minLon,minLat,maxLon,maxLat in degrees: {why}"));
        let parts: Vec<f64> = s
            .split(',')
            .map(|p| p.trim().parse::<f64>().map_err(|_| bad(&format!("{p:?} is not a number"))))
            .collect::<Result<_, _>>()?;
        let [min_lon, min_lat, max_lon, max_lat] = parts[..] else {
            return Err(bad(&format!("{} values given, 4 needed", parts.len())));
        };
        if ![min_lon, max_lon].iter().all(|v| (-180.0..=180.0).contains(v))
            || ![min_lat, max_lat].iter().all(|v| (-90.0..=90.0).contains(v))
        {
            return Err(bad("out of range"));
        }
        if min_lon > max_lon || min_lat > max_lat {
            return Err(bad("the minimum exceeds the maximum"));
        }
        Ok(Self { min_lon, min_lat, max_lon, max_lat })
    }

    pub(crate) fn contains(&self, (lat, lon): (f64, f64)) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

/// One connection's view.
#[derive(Debug, Clone)]
pub(crate) struct View {
    scope: VehicleScope,
    /// A driver's own id: their orders are visible.
    driver_id: Option<String>,
    /// The unit whose orders a unit user sees.
    own_unit: Option<String>,
    unit_filter: Option<String>,
    bbox: Option<BBox>,
}

impl View {
    /// The view of `user` with the query's filters. A unit user may filter only by their
    /// own unit (another unit is outside their view: 404); a driver's view is their car.
    pub(crate) fn new(
        user: &User,
        scope: VehicleScope,
        unit_id: Option<&str>,
        bbox: Option<&str>,
    ) -> Result<Self, ApiError> {
        let unit_filter = match unit_id {
            None => None,
            Some(id) => {
                validate_id("unit_id", id)?;
                if let VehicleScope::Unit(own) = &scope
                    && own != id
                {
                    return Err(ApiError::NotFound("unit"));
                }
                Some(id.to_owned())
            }
        };
        let bbox = bbox.map(BBox::parse).transpose()?;
        let own_unit = (user.role == Role::Unit).then(|| user.unit_id.clone().unwrap_or_default());
        let driver_id = if user.role == Role::Driver { user.driver_id.clone() } else { None };
        Ok(Self { scope, driver_id, own_unit, unit_filter, bbox })
    }

    /// Sees every car and every order unfiltered: such a connection sends shared messages.
    pub(crate) fn sees_all(&self) -> bool {
        self.scope == VehicleScope::All && self.unit_filter.is_none() && self.bbox.is_none()
    }

    /// Whether a car of this unit is within the role's view and the unit filter.
    pub(crate) fn sees_car(&self, vin: &Vin, unit_id: Option<&str>) -> bool {
        let in_scope = match &self.scope {
            VehicleScope::All => true,
            VehicleScope::Unit(own) => unit_id == Some(own.as_str()),
            VehicleScope::Car(car) => car.as_ref() == Some(vin),
        };
        in_scope && self.unit_filter.as_deref().is_none_or(|u| unit_id == Some(u))
    }

    /// Whether a car at `pos` belongs in the snapshot's box (without a box: every car, also
    /// one that never sent a position).
    pub(crate) fn in_box(&self, pos: Option<(f64, f64)>) -> bool {
        match self.bbox {
            None => true,
            Some(b) => pos.is_some_and(|p| b.contains(p)),
        }
    }

    /// Whether a changed car goes to this connection: in view, and in the box now or before.
    pub(crate) fn wants(&self, c: &Changed) -> bool {
        self.sees_car(&c.vin, c.unit_id.as_deref())
            && (self.in_box(c.pos) || (self.bbox.is_some() && self.in_box(c.prev)))
    }

    /// The message an order change sends this connection, if any: a unit sees its own
    /// orders, a driver the orders assigned to them (and, without its new car and driver, the
    /// change that takes one away from them), everyone else every order; the unit filter
    /// applies.
    pub(crate) fn order_message<'a>(&self, o: &'a OrderFrame) -> Option<&'a Utf8Bytes> {
        if self.unit_filter.as_deref().is_some_and(|u| u != o.unit_id) {
            return None;
        }
        match (&self.scope, &self.own_unit) {
            (VehicleScope::Car(_), _) if self.driver_id.is_none() => None,
            (VehicleScope::Car(_), _) if o.driver_id == self.driver_id => Some(&o.msg),
            (VehicleScope::Car(_), _) if o.previous_driver_id == self.driver_id => o.for_previous.as_ref(),
            (VehicleScope::Car(_), _) => None,
            (_, Some(own)) => (own == &o.unit_id).then_some(&o.msg),
            _ => Some(&o.msg),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bbox_parses_in_lon_lat_order_and_bad_ones_are_refused() {
        let b = BBox::parse("121.9,29.9,122.3,30.1").unwrap();
        assert!(b.contains((30.0, 122.1)));
        assert!(!b.contains((30.2, 122.1)));
        for bad in ["", "1,2,3", "1,2,3,4,5", "a,29,122,30", "122.3,29.9,121.9,30.1", "200,0,201,1", "NaN,0,1,1"] {
            assert!(BBox::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
