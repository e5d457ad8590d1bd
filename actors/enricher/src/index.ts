// The enricher actor: exporter and interface metadata, GeoIP, AS numbers, network attributes, routing and classification onto decoded flows
export {}
