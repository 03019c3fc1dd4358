# Apache Kafka in KRaft mode from the Maven Central jars, started with `java -cp`.

KAFKA_VERSION="${KAFKA_VERSION:-3.9.1}"
KAFKA_HOME="$HELIOS_CACHE/kafka-$KAFKA_VERSION"

kafka_install() {
  [[ -f "$KAFKA_HOME/.complete" ]] && return 0
  command -v mvn >/dev/null || die "mvn is required to fetch Kafka (apt-get install maven)"
  log "fetching Kafka $KAFKA_VERSION from Maven Central"
  rm -rf "$KAFKA_HOME"; mkdir -p "$KAFKA_HOME"
  sed "s/@KAFKA_VERSION@/$KAFKA_VERSION/g" "$E2E_DIR/components/kafka-pom.xml" >"$KAFKA_HOME/pom.xml"
  mvn -B -q -f "$KAFKA_HOME/pom.xml" -Dmaven.repo.local="$HELIOS_CACHE/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs" ||
    die "fetching Kafka with mvn failed"
  touch "$KAFKA_HOME/.complete"
}

kafka_java() { java -Xms256m -Xmx768m -Dlog4j.configuration="file:$STACK_DIR/kafka/log4j.properties" -cp "$KAFKA_HOME/libs/*" "$@"; }

kafka_write_config() {
  local port=$1 cport=$2 dir="$STACK_DIR/kafka"
  mkdir -p "$dir" "$DATA_DIR/kafka"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR/kafka
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
PROPS
  cat >"$dir/log4j.properties" <<PROPS
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
PROPS
}

kafka_start() {
  local port cport
  port=$(port_of kafka "${KAFKA_PORT:-}")
  cport=$(port_of kafka-controller "${KAFKA_CONTROLLER_PORT:-}")
  running kafka && return 0
  kafka_write_config "$port" "$cport"
  if [[ ! -f "$DATA_DIR/kafka/meta.properties" ]]; then
    log "formatting Kafka storage"
    kafka_java kafka.tools.StorageTool format -t "$(kafka_java kafka.tools.StorageTool random-uuid)" \
      -c "$STACK_DIR/kafka/server.properties" >>"$LOG_DIR/kafka.log" 2>&1 || die "kafka storage format failed"
  fi
  start_bg kafka java -Xms256m -Xmx768m -Dlog4j.configuration="file:$STACK_DIR/kafka/log4j.properties" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$STACK_DIR/kafka/server.properties"
  wait_for kafka 120 kafka_ready "$port"
}

# kafka_ready PORT: the broker answers a metadata request (not just an open port).
kafka_ready() {
  tcp_open "$1" && kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$1" --list
}
