package hl7

import (
	"encoding/json"
	"testing"
)

func TestEncodeJSON(t *testing.T) {
	m, err := Parse([]byte("MSH|^~\\&|LAB|HOSP|||20260114||ORU^R01|C1|P|2.5.1\r" +
		"PID|1||MRN1^^^HOSP&1.2.3&ISO^MR~~X9||O\\S\\Brien^Pat\r" +
		"OBX|1|NM|718-7^Hgb^LN||13.2|g/dL\r"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := EncodeJSON(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"segments":[` +
		`{"id":"MSH","MSH.1":[{"MSH.1.1":"|"}],"MSH.2":[{"MSH.2.1":"^~\\&"}],"MSH.3":[{"MSH.3.1":"LAB"}],"MSH.4":[{"MSH.4.1":"HOSP"}],"MSH.7":[{"MSH.7.1":"20260114"}],"MSH.9":[{"MSH.9.1":"ORU","MSH.9.2":"R01"}],"MSH.10":[{"MSH.10.1":"C1"}],"MSH.11":[{"MSH.11.1":"P"}],"MSH.12":[{"MSH.12.1":"2.5.1"}]},` +
		`{"id":"PID","PID.1":[{"PID.1.1":"1"}],"PID.3":[{"PID.3.1":"MRN1","PID.3.4":{"PID.3.4.1":"HOSP","PID.3.4.2":"1.2.3","PID.3.4.3":"ISO"},"PID.3.5":"MR"},{},{"PID.3.1":"X9"}],"PID.5":[{"PID.5.1":"O^Brien","PID.5.2":"Pat"}]},` +
		`{"id":"OBX","OBX.1":[{"OBX.1.1":"1"}],"OBX.2":[{"OBX.2.1":"NM"}],"OBX.3":[{"OBX.3.1":"718-7","OBX.3.2":"Hgb","OBX.3.3":"LN"}],"OBX.5":[{"OBX.5.1":"13.2"}],"OBX.6":[{"OBX.6.1":"g/dL"}]}]}`
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	var v map[string]any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
}
