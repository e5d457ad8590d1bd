// Public surface of @flowbus/demo-exporter: the actor, its configuration and default network, and
// the pure parts (traffic generator, NetFlow v9/IPFIX, sFlow and BMP encoders) tests and benchmarks use.
export { demoExporterActor } from './actor.js'
export { DemoExporterConfig, configProblem, splitHostPort, type ExporterConfig, type InterfaceConfig, type ProfileConfig } from './config.js'
export { defaultExporters, defaultProfiles } from './default-network.js'
export { buildNetwork, modelPrefix, type ModelExporter, type ModelPeer, type ModelRoute, type NetworkModel } from './network.js'
export { DemoSimulation, type ExporterOutput } from './simulation.js'
export { TrafficGenerator, dailyFactor, newFlow, type DemoFlow } from './traffic.js'
export { SeededRandom, WeightedChoice, streamSeed } from './random.js'
export { TemplateExporter, TEMPLATE_IPV4, TEMPLATE_IPV6, TEMPLATE_OPTIONS } from './encode/netflow.js'
export { SflowExporter } from './encode/sflow.js'
export * from './encode/bmp.js'
export { startSnmpAgent } from './snmp-agent.js'
export { BmpSession, type BmpSessionState } from './bmp-session.js'
