package webui

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/homederp/homederp/relay"
)

// The status page's chart of the last day: clients, and Mbit/s in and
// out. It is inline SVG drawn here, on the server: the page's CSP allows
// no script, and a couple of paths is all a chart of 288 points needs.

const (
	chartSpan    = 24 * time.Hour
	chartBucket  = 5 * time.Minute // 288 points a day
	chartWidth   = 300.0           // the SVG's user units; it scales to the card
	chartHeight  = 60.0
	chartBuckets = int(chartSpan / chartBucket)
)

// trafficPoint is one bucket of the chart, also the JSON answer.
type trafficPoint struct {
	Time    time.Time `json:"time"`     // the bucket's start
	Clients int       `json:"clients"`  // the most connected at once
	MbpsIn  float64   `json:"mbps_in"`  // the bucket's mean
	MbpsOut float64   `json:"mbps_out"` // the bucket's mean
}

// chartView is one chart as the template draws it.
type chartView struct {
	Title  string // e.g. "Clients"
	Max    string // the top of the y axis, e.g. "4"
	Series []chartSeries
}

type chartSeries struct {
	Name  string // for the legend, e.g. "out (upload)"
	Class string // the CSS class that colours it
	Path  string // SVG path data, e.g. "M1.0 80.0L3.1 60.0"
}

// bucketTraffic averages the samples of the last day into 5-minute
// buckets, oldest first; buckets without samples are left out.
func bucketTraffic(samples []relay.TrafficSample, now time.Time) []trafficPoint {
	start := now.Add(-chartSpan).Truncate(chartBucket)
	type acc struct {
		n            int
		clients      int
		mbpsIn, mbps float64
	}
	accs := make([]acc, chartBuckets+1)
	for _, s := range samples {
		i := int(s.Time.Sub(start) / chartBucket)
		if s.Time.Before(start) || i > chartBuckets {
			continue
		}
		a := &accs[i]
		a.n++
		a.clients = max(a.clients, s.Clients)
		a.mbpsIn += s.MbpsIn
		a.mbps += s.MbpsOut
	}
	var out []trafficPoint
	for i, a := range accs {
		if a.n == 0 {
			continue
		}
		out = append(out, trafficPoint{
			Time:    start.Add(time.Duration(i) * chartBucket),
			Clients: a.clients,
			MbpsIn:  a.mbpsIn / float64(a.n),
			MbpsOut: a.mbps / float64(a.n),
		})
	}
	return out
}

// trafficCharts draws the points: one chart of clients, one of Mbit/s.
func trafficCharts(t *tr, points []trafficPoint, now time.Time) []chartView {
	start := now.Add(-chartSpan).Truncate(chartBucket)
	maxClients, maxMbps := 0.0, 0.0
	for _, p := range points {
		maxClients = math.Max(maxClients, float64(p.Clients))
		maxMbps = math.Max(maxMbps, math.Max(p.MbpsIn, p.MbpsOut))
	}
	topClients := math.Max(1, math.Ceil(maxClients))
	topMbps := niceCeil(maxMbps)
	path := func(value func(trafficPoint) float64, top float64) string {
		var b strings.Builder
		lastIdx := -2
		for _, p := range points {
			i := int(p.Time.Sub(start) / chartBucket)
			x := (float64(i) + 0.5) / float64(chartBuckets+1) * chartWidth
			y := chartHeight - math.Min(value(p)/top, 1)*chartHeight
			cmd := "L"
			if i != lastIdx+1 {
				cmd = "M" // a gap: the box was off, or the history is young
			}
			fmt.Fprintf(&b, "%s%.1f %.1f", cmd, x, y)
			lastIdx = i
		}
		return b.String()
	}
	return []chartView{
		{
			Title: t.S("status.chart.clients"),
			Max:   strconv.Itoa(int(topClients)),
			Series: []chartSeries{
				{t.S("status.chart.connected"), "line-clients", path(func(p trafficPoint) float64 { return float64(p.Clients) }, topClients)},
			},
		},
		{
			Title: t.S("status.chart.mbps"),
			Max:   strconv.FormatFloat(topMbps, 'f', -1, 64),
			Series: []chartSeries{
				{t.S("status.chart.out"), "line-out", path(func(p trafficPoint) float64 { return p.MbpsOut }, topMbps)},
				{t.S("status.chart.in"), "line-in", path(func(p trafficPoint) float64 { return p.MbpsIn }, topMbps)},
			},
		},
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, at least 0.1,
// so the axis reads "0.5" or "20" rather than "17.3".
func niceCeil(v float64) float64 {
	if v <= 0.1 {
		return 0.1
	}
	exp := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if c := m * exp; c >= v {
			// Round away float noise such as 0.30000000000000004.
			return math.Round(c*1e6) / 1e6
		}
	}
	return 10 * exp
}
