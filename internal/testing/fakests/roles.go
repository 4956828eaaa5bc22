package fakests

import (
	"slices"
	"strings"
)

// ObjectRoles are the permissions of the predefined Cloud Storage roles a boundary may name, as
// Google's IAM role reference lists them (cloud.google.com/iam/docs/roles-permissions/storage;
// the resourcemanager and orgpolicy read permissions the roles carry are left out, a boundary
// on a bucket never reaches them). STS resolves a boundary's inRole: values to these when it
// checks a request; the fake does it when it issues, so a test can assert the permissions a
// token is left with (Issued.Permissions), not only the role names Warden sent.
var ObjectRoles = map[string][]string{
	"roles/storage.objectViewer": {
		"storage.folders.get", "storage.folders.list",
		"storage.managedFolders.get", "storage.managedFolders.list",
		"storage.objects.get", "storage.objects.list",
	},
	"roles/storage.objectCreator": {
		"storage.folders.create", "storage.managedFolders.create",
		"storage.multipartUploads.abort", "storage.multipartUploads.create", "storage.multipartUploads.listParts",
		"storage.objects.create",
	},
	"roles/storage.objectUser": {
		"storage.folders.create", "storage.folders.delete", "storage.folders.get", "storage.folders.list", "storage.folders.rename",
		"storage.managedFolders.create", "storage.managedFolders.delete", "storage.managedFolders.get", "storage.managedFolders.list",
		"storage.multipartUploads.abort", "storage.multipartUploads.create", "storage.multipartUploads.list", "storage.multipartUploads.listParts",
		"storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list", "storage.objects.restore", "storage.objects.update",
	},
	"roles/storage.objectAdmin": {
		"storage.folders.create", "storage.folders.delete", "storage.folders.get", "storage.folders.list", "storage.folders.rename",
		"storage.managedFolders.create", "storage.managedFolders.delete", "storage.managedFolders.get", "storage.managedFolders.getIamPolicy",
		"storage.managedFolders.list", "storage.managedFolders.setIamPolicy",
		"storage.multipartUploads.abort", "storage.multipartUploads.create", "storage.multipartUploads.list", "storage.multipartUploads.listParts",
		"storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.getIamPolicy", "storage.objects.list",
		"storage.objects.overrideUnlockedRetention", "storage.objects.restore", "storage.objects.setIamPolicy", "storage.objects.setRetention",
		"storage.objects.update",
	},
}

// DefineRole makes a custom role (projects/P/roles/NAME or organizations/ID/roles/NAME) known,
// as creating it in IAM would; a boundary naming a role that neither ObjectRoles nor
// DefineRole knows is refused, as STS refuses a role that does not exist.
func (s *Server) DefineRole(name string, permissions ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.custom == nil {
		s.custom = map[string][]string{}
	}
	s.custom[name] = slices.Clone(permissions)
}

// permissionsOf resolves a boundary rule's inRole: values (false for an unknown role).
func (s *Server) permissionsOf(inRoles []string) ([]string, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range inRoles {
		role := strings.TrimPrefix(p, "inRole:")
		perms, ok := ObjectRoles[role]
		if !ok {
			perms, ok = s.custom[role]
		}
		if !ok {
			return nil, role, false
		}
		out = append(out, perms...)
	}
	slices.Sort(out)
	return slices.Compact(out), "", true
}

// Permissions are the permissions the token's rule on bucket leaves it (nil: no rule for it).
func (is Issued) Permissions(bucket string) []string {
	for _, r := range is.Rules {
		if r.Resource == "//storage.googleapis.com/projects/_/buckets/"+bucket {
			return slices.Clone(r.Granted)
		}
	}
	return nil
}
