// ECharts, with only what the console draws: a map (the city's own grid, no tiles), bars and
// lines, and a case's place (a pin on its street's cells), on canvas. Importing `echarts` whole
// would triple the bundle.

import { BarChart, LineChart, MapChart, ScatterChart } from 'echarts/charts'
import {
  GeoComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapContinuousComponent,
} from 'echarts/components'
import { getInstanceByDom, init, registerMap, use, type ComposeOption } from 'echarts/core'
import { CanvasRenderer } from 'echarts/renderers'
import type { BarSeriesOption, LineSeriesOption, MapSeriesOption, ScatterSeriesOption } from 'echarts/charts'
import type {
  GeoComponentOption,
  GridComponentOption,
  LegendComponentOption,
  TooltipComponentOption,
  VisualMapComponentOption,
} from 'echarts/components'

use([
  MapChart,
  BarChart,
  LineChart,
  ScatterChart,
  GeoComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapContinuousComponent,
  CanvasRenderer,
])

export type ChartOption = ComposeOption<
  | MapSeriesOption
  | BarSeriesOption
  | LineSeriesOption
  | ScatterSeriesOption
  | GeoComponentOption
  | GridComponentOption
  | LegendComponentOption
  | TooltipComponentOption
  | VisualMapComponentOption
>

export { getInstanceByDom, init, registerMap }
export type { ECharts } from 'echarts/core'

/** The wall screen's palette, shared by every chart. */
export const palette = {
  text: '#c8d8ee',
  muted: '#7d93b2',
  line: '#24406a',
  series: ['#3fb8ff', '#36d399', '#fbbd23', '#f87272', '#a78bfa'],
  choropleth: ['#0d2b52', '#1767a8', '#2fa9d8', '#6fe0c3', '#f5e663'],
  empty: '#13233d',
}
