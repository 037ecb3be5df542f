// The map legend: status colours, the low-charge badge, the alarm ring and stations.

/* global L */

import { h, replaceChildren } from '../lib/dom.js';
import { t, onLangChange, formatUnit } from '../lib/i18n.js';
import { STATUSES, statusColor } from './cars.js';

export function addLegend(map, getLowSoc) {
  const Legend = L.Control.extend({
    options: { position: 'bottomright' },
    onAdd(m) {
      // On a phone-sized map the legend starts folded: it would hide a third of the map.
      const folded = m.getContainer().clientWidth < 600;
      const box = h('div', { class: `legend leaflet-control${folded ? ' collapsed' : ''}`, id: 'map-legend' });
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      this.box = box;
      this.render();
      this.stop = onLangChange(() => this.render());
      return box;
    },
    onRemove() {
      this.stop?.();
    },
    render() {
      const toggle = h('button', {
        type: 'button', class: 'legend-toggle', 'aria-expanded': String(!this.box.classList.contains('collapsed')),
        onclick: () => {
          this.box.classList.toggle('collapsed');
          toggle.setAttribute('aria-expanded', String(!this.box.classList.contains('collapsed')));
        },
      }, t('legend.title'));
      replaceChildren(this.box,
        toggle,
        h('ul', { class: 'legend-items' },
          STATUSES.map((s) => h('li', { dataset: { status: s } },
            h('span', { class: 'swatch', style: `background:${statusColor(s)}` }), t(`status.${s}`))),
          h('li', null, h('span', { class: 'soc-badge low legend-badge' }, '15%'),
            t('legend.low_soc', { limit: formatUnit('unit.pct', getLowSoc()) })),
          h('li', null, h('span', { class: 'swatch alarm-ring' }), t('tab.alarms')),
          h('li', null, h('span', { class: 'swatch station' }), t('legend.station'))));
    },
  });
  const legend = new Legend();
  legend.addTo(map);
  return { refresh: () => legend.render() };
}
