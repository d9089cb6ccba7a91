package natlab

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkLinks compares a simultaneous-open path (port-restricted ↔
// port-restricted, the real CLI, 4 MiB) with a direct path to an open
// host (port-restricted → open) in the same run, unshaped and with 40 ms
// added each way on both access links: the p50 over b.N sends of the ICE
// connect time (from the answer to the selected path) and of the
// throughput, and their ratios. Run it with
//
//	go test -run '^$' -bench Links -benchtime 5x ./internal/natlab
func BenchmarkLinks(b *testing.B) {
	needLab(b)
	l := New(b, bin, 1)
	for _, delay := range []time.Duration{0, 40 * time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%v", delay), func(b *testing.B) {
			var so, direct []outcome
			for i := 0; i < b.N; i++ {
				for _, c := range []struct {
					p   pair
					out *[]outcome
				}{
					{pair{A: PortRestricted, B: Open, Delay: delay}, &direct},
					{pair{A: PortRestricted, B: PortRestricted, Delay: delay}, &so},
				} {
					o := runPair(b, l, c.p)
					if !o.OK {
						b.Fatalf("%v: failed: %s", c.p, o.Err)
					}
					*c.out = append(*c.out, o)
				}
			}
			p50 := func(os []outcome, f func(outcome) float64) float64 {
				v := make([]float64, len(os))
				for i, o := range os {
					v[i] = f(o)
				}
				slices.Sort(v)
				return v[len(v)/2]
			}
			connect := func(o outcome) float64 { return float64(o.Connect.Microseconds()) / 1000 }
			rate := func(o outcome) float64 { return o.Rate / 1e6 }
			b.ReportMetric(p50(so, connect), "so-connect-p50-ms")
			b.ReportMetric(p50(direct, connect), "direct-connect-p50-ms")
			b.ReportMetric(p50(so, rate), "so-MB/s")
			b.ReportMetric(p50(direct, rate), "direct-MB/s")
			b.ReportMetric(p50(so, rate)/p50(direct, rate), "so/direct-throughput")
			b.ReportMetric(0, "ns/op")
		})
	}
}
