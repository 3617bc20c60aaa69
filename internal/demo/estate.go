package demo

import "strings"

// The bundled Prowler samples are upstream's examples, which carry template
// placeholders (<account_uid>, <subscription_uid>, <resource_name>, ...)
// where a real scan has IDs and names. The demo fills them with fictitious
// ones so its tickets read like a real estate; the embedded files stay as
// they were copied (internal/sample/data/README.md). Each placeholder gets
// one fixed value per cloud, so findings that share a resource upstream
// still share it, and the counts do not change. Placeholders inside
// remediation text (such as <location> in a CLI example) are left alone.
var estates = map[string]*strings.Replacer{
	"aws": strings.NewReplacer(
		"<account_uid>", "123456789012",
		"<account_name>", "contoso-prod",
		"<region>", "eu-west-1",
		"<resource_uid>", "arn:aws:access-analyzer:eu-west-1:123456789012:analyzer/contoso-prod",
		"<resource_arn>", "arn:aws:access-analyzer:eu-west-1:123456789012:analyzer/contoso-prod",
		"<resource_name>", "contoso-prod",
		"<finding_uid>", "prowler-aws-example-finding",
	),
	"azure": strings.NewReplacer(
		"<subscription_uid>", "5f3c1e2a-7b9d-4e60-a1c4-0de5a7b9c2f1",
		"<subscription_name>", "Contoso Production",
		"<tenant_uid>", "9d2e7f4b-3a1c-4b8e-b6d0-5c7a1e3f9b24",
		"<organization_name>", "Contoso",
		"<resource_uid>", "default",
		"<resource_name>", "default",
		"<finding_uid>", "prowler-azure-example-finding",
	),
	"gcp": strings.NewReplacer(
		"<project_id>", "contoso-prod-418203",
		"<project_name>", "Contoso Production",
		"<tenant_uid>", "418203957261",
		"<uid>", "7315462981043526519",
		"<resource_id>", "allow-rdp-from-anywhere",
		"<finding_uid>", "prowler-gcp-example-finding",
	),
}

// fillPlaceholders returns a copy of a bundled sample file with its
// placeholders filled; a file of no known cloud is returned as it is.
func fillPlaceholders(name string, data []byte) []byte {
	for cloud, r := range estates {
		if strings.Contains(name, "_"+cloud+".") {
			return []byte(r.Replace(string(data)))
		}
	}
	return data
}
