package testmysql

import "testing"

// The server starts, and the test user reaches its database.
func TestStart(t *testing.T) {
	s := Start(t)
	s.Exec("CREATE TABLE hl7.t (id INT PRIMARY KEY)")
	var n int
	if err := s.DB().QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 0 {
		t.Fatalf("count %d, %v", n, err)
	}
}
