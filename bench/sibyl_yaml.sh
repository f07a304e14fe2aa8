# sibyl_yaml.sh: sourced by the bench scripts that start one sibyld.
#
# write_sibyl_yaml DIR PORT STORAGE_PORT ADMIN_PORT
#   writes DIR/sibyl.yaml: a one-node "bench" cluster on 127.0.0.1 with its
#   data, commitlog and hints under DIR, commitlog_sync periodic.
write_sibyl_yaml() {
    cat >"$1/sibyl.yaml" <<EOF_YAML
cluster_name: bench
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
native_transport_port: $2
storage_port: $3
admin_port: $4
data_file_directories: [$1/data]
commitlog_directory: $1/commitlog
hints_directory: $1/hints
commitlog_sync: periodic
EOF_YAML
}
