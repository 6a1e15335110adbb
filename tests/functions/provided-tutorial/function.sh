function handler () {
  EVENT_DATA=$1

  RESPONSE="Echoing request: '$EVENT_DATA'"
  echo $RESPONSE
}
