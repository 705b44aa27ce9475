package bench

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	e, err := Setup()
	if err != nil {
		panic(err)
	}
	code := m.Run()
	e.Close()
	os.Exit(code)
}

func BenchmarkSend(b *testing.B) {
	for _, sc := range SendCases() {
		b.Run(sc.Name, sc.F)
	}
}

func BenchmarkAttachment(b *testing.B) {
	for _, c := range AttachmentCases() {
		b.Run(c.Name, c.F)
	}
}

func BenchmarkResolve(b *testing.B) {
	for _, c := range ResolveCases() {
		b.Run(c.Name, c.F)
	}
}

func BenchmarkRewrite(b *testing.B) {
	for _, c := range RewriteCases() {
		b.Run(c.Name, c.F)
	}
}

func BenchmarkTestConnection(b *testing.B) {
	for _, c := range TestConnectionCases() {
		b.Run(c.Name, c.F)
	}
}

func BenchmarkOAuth2(b *testing.B) {
	for _, c := range OAuth2Cases() {
		b.Run(c.Name, c.F)
	}
}

func BenchmarkLatency(b *testing.B) {
	for _, c := range LatencyCases() {
		b.Run(c.Name, c.F)
	}
}
