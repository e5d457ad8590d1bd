// The snmp-poller actor: exporter and interface names, descriptions and speeds over SNMP v2c/v3, published to the bus state
export {}
